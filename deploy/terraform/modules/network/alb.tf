# Public ALB with WAF, the blue/green target group pair and the production + test listeners.
# CodeDeploy swaps the listeners' target group on every deployment, so terraform ignores their
# default action after creation.

locals {
  https = var.certificate_arn != null

  # The CodeDeploy test listener: HTTPS 8443 with a certificate (reached by the certificate's
  # domain name, which must resolve to this ALB), plain HTTP 8080 without one (dev).
  test_listener_port = local.https ? 8443 : 8080
  test_listener_url  = local.https ? "https://${var.domain_name}:8443" : "http://${aws_lb.public.dns_name}:8080"
}

resource "aws_lb" "public" {
  #checkov:skip=CKV_AWS_150:enable_deletion_protection is the per-environment variable alb_deletion_protection: true in prod; dev/staging must be destroyable.
  #checkov:skip=CKV2_AWS_20:HTTP redirects to HTTPS whenever a certificate is set (aws_lb_listener.http_redirect); only dev without a certificate serves plain HTTP, and require_https blocks that in staging/prod.
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  idle_timeout               = 60

  access_logs {
    bucket  = aws_s3_bucket.logs.id
    prefix  = "alb"
    enabled = true
  }

  lifecycle {
    precondition {
      condition     = !var.require_https || var.certificate_arn != null
      error_message = "This environment requires HTTPS: set certificate_arn to an ACM certificate in this region."
    }
  }

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_lb_target_group" "blue" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the ALB; tasks sit in private subnets and accept traffic only from the ALB security group.
  name                 = "${var.name}-blue"
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = var.app_port
  vpc_id               = aws_vpc.this.id
  deregistration_delay = 30

  health_check {
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_target_group" "green" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the ALB; tasks sit in private subnets and accept traffic only from the ALB security group.
  name                 = "${var.name}-green"
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = var.app_port
  vpc_id               = aws_vpc.this.id
  deregistration_delay = 30

  health_check {
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# With a certificate: HTTPS 443 serves, HTTP 80 redirects, the test listener is HTTPS 8443.
resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.public.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.blue.arn
  }

  lifecycle {
    ignore_changes = [default_action] # CodeDeploy owns the blue/green switch
  }
}

resource "aws_lb_listener" "http_redirect" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.public.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "test_https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.public.arn
  port              = 8443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.green.arn
  }

  lifecycle {
    ignore_changes = [default_action]

    precondition {
      condition     = var.domain_name != null
      error_message = "Set domain_name (the certificate's host name, pointing at this ALB): the pre-traffic hook calls the HTTPS test listener by it."
    }
  }
}

# Without a certificate (dev without a domain): plain HTTP on 80 and a test listener on 8080.
# require_https keeps this branch out of staging and prod.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:Only created when certificate_arn is null (dev without a domain); staging/prod set require_https, which refuses to plan without a certificate.
  #checkov:skip=CKV_AWS_103:Plain-HTTP listener has no TLS policy; only created without a certificate (see CKV_AWS_2).
  count = local.https ? 0 : 1

  load_balancer_arn = aws_lb.public.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.blue.arn
  }

  lifecycle {
    ignore_changes = [default_action]
  }
}

resource "aws_lb_listener" "test_http" {
  #checkov:skip=CKV_AWS_2:Test listener of a certificate-less dev environment; reachable only from inside the VPC.
  #checkov:skip=CKV_AWS_103:Plain-HTTP listener has no TLS policy; only created without a certificate.
  count = local.https ? 0 : 1

  load_balancer_arn = aws_lb.public.arn
  port              = 8080
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.green.arn
  }

  lifecycle {
    ignore_changes = [default_action]
  }
}

# /metrics is for scrapers inside the VPC, never for the internet: every listener answers it
# 404 itself instead of forwarding (a rule, so CodeDeploy's switch of the default action keeps it).
locals {
  listeners = local.https ? {
    prod = aws_lb_listener.https[0].arn
    test = aws_lb_listener.test_https[0].arn
    } : {
    prod = aws_lb_listener.http[0].arn
    test = aws_lb_listener.test_http[0].arn
  }
}

resource "aws_lb_listener_rule" "metrics_not_public" {
  for_each = toset(["prod", "test"])

  listener_arn = local.listeners[each.key]
  priority     = 1

  condition {
    path_pattern {
      values = ["/metrics", "/metrics/*"]
    }
  }

  action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      status_code  = "404"
      message_body = jsonencode({ error = { code = "not_found", message = "no such path" } })
    }
  }
}

# --- WAF ------------------------------------------------------------------------------------

resource "aws_wafv2_web_acl" "this" {
  name        = var.name
  description = "Managed rule groups and a per-IP rate limit in front of the rates API"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "aws-common"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"

        # Batch uploads are larger than the rule set's 8 KB body limit: count, do not block.
        rule_action_override {
          name = "SizeRestrictions_BODY"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-aws-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-ip-reputation"
    priority = 30

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-ip-reputation"
      sampled_requests_enabled   = true
    }
  }

  # Tor exits and anonymising proxies are blocked; hosting-provider addresses only counted,
  # because B2B clients legitimately call the API from their own cloud servers.
  rule {
    name     = "aws-anonymous-ip"
    priority = 35

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"

        rule_action_override {
          name = "HostingProviderIPList"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 40

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_5min
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_lb.public.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_338:Retention is the per-environment variable log_retention_days (365 in prod, shorter in dev/staging to save cost).
  name              = "aws-waf-logs-${var.name}" # WAF requires this prefix
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}
