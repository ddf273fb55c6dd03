# Security groups: the internet reaches only the ALB (80/443); the API tasks only from the ALB;
# PostgreSQL only from the API, worker and Lambda groups. No SSH anywhere, no bastion: data
# imports run as one-off ECS tasks.

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Public ALB: HTTP/HTTPS from the internet, forwards to the API tasks"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 on the public ALB only answers with a 301 redirect to HTTPS when a certificate is set; it must be reachable from anywhere for that redirect.
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from the internet (redirected to HTTPS when a certificate is set)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from the internet"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# The CodeDeploy test listener (green tasks before the traffic shift) is reachable only from
# inside the VPC, e.g. by a validation hook.
resource "aws_vpc_security_group_ingress_rule" "alb_test_http" {
  security_group_id = aws_security_group.alb.id
  description       = "Blue/green test listener (HTTP) from inside the VPC only"
  ip_protocol       = "tcp"
  from_port         = 8080
  to_port           = 8080
  cidr_ipv4         = aws_vpc.this.cidr_block
}

resource "aws_vpc_security_group_ingress_rule" "alb_test_https" {
  security_group_id = aws_security_group.alb.id
  description       = "Blue/green test listener (HTTPS) from inside the VPC only"
  ip_protocol       = "tcp"
  from_port         = 8443
  to_port           = 8443
  cidr_ipv4         = aws_vpc.this.cidr_block
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Forward to the API tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.api.id
}

resource "aws_security_group" "api" {
  #checkov:skip=CKV2_AWS_5:Attached in another module (service, ingestion or database) through this module's outputs; checkov does not follow cross-module references.
  name        = "${var.name}-api"
  description = "API tasks: traffic only from the ALB"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-api" }
}

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "HTTP from the ALB only"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_security_group" "worker" {
  #checkov:skip=CKV2_AWS_5:Attached in another module (service, ingestion or database) through this module's outputs; checkov does not follow cross-module references.
  name        = "${var.name}-worker"
  description = "Ingestion worker and one-off tasks (migrate, import): no inbound traffic"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-worker" }
}

resource "aws_security_group" "lambda" {
  #checkov:skip=CKV2_AWS_5:Attached in another module (service, ingestion or database) through this module's outputs; checkov does not follow cross-module references.
  name        = "${var.name}-lambda"
  description = "Ingestion Lambda functions: no inbound traffic"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-lambda" }
}

locals {
  # Groups whose members talk to PostgreSQL and to AWS APIs (via NAT or the S3 endpoint).
  database_clients = {
    api    = aws_security_group.api.id
    worker = aws_security_group.worker.id
    lambda = aws_security_group.lambda.id
  }
}

resource "aws_vpc_security_group_egress_rule" "clients_https" {
  for_each = local.database_clients

  security_group_id = each.value
  description       = "HTTPS to AWS APIs (ECR, Secrets Manager, S3, CloudWatch)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "clients_postgres" {
  for_each = local.database_clients

  security_group_id            = each.value
  description                  = "PostgreSQL to the database"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_security_group" "database" {
  #checkov:skip=CKV2_AWS_5:Attached in another module (service, ingestion or database) through this module's outputs; checkov does not follow cross-module references.
  name        = "${var.name}-database"
  description = "PostgreSQL: only from the API, worker and Lambda groups; no egress"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-database" }
}

resource "aws_vpc_security_group_ingress_rule" "database_from_clients" {
  for_each = local.database_clients

  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

# The CodeDeploy pre-traffic hook (pipeline module): calls the test listener and the CodeDeploy
# API, nothing else. From the private subnets it reaches the internet-facing ALB through NAT, so
# the test listener also admits the NAT gateways' addresses (still nothing from the internet).
resource "aws_security_group" "deploy_hook" {
  #checkov:skip=CKV2_AWS_5:Attached in another module (pipeline) through this module's outputs; checkov does not follow cross-module references.
  name        = "${var.name}-deploy-hook"
  description = "CodeDeploy pre-traffic hook: test listener and AWS APIs only, no inbound traffic"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-deploy-hook" }
}

resource "aws_vpc_security_group_egress_rule" "deploy_hook" {
  for_each = {
    https         = 443
    test_listener = local.test_listener_port
  }

  security_group_id = aws_security_group.deploy_hook.id
  description       = "${each.key} (port ${each.value}) to the ALB's public address and AWS APIs"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "alb_test_http_from_nat" {
  count = local.nat_count

  security_group_id = aws_security_group.alb.id
  description       = "Blue/green test listener (HTTP) from this VPC's NAT gateway ${count.index} (the pre-traffic hook)"
  ip_protocol       = "tcp"
  from_port         = 8080
  to_port           = 8080
  cidr_ipv4         = "${aws_eip.nat[count.index].public_ip}/32"
}

resource "aws_vpc_security_group_ingress_rule" "alb_test_https_from_nat" {
  count = local.nat_count

  security_group_id = aws_security_group.alb.id
  description       = "Blue/green test listener (HTTPS) from this VPC's NAT gateway ${count.index} (the pre-traffic hook)"
  ip_protocol       = "tcp"
  from_port         = 8443
  to_port           = 8443
  cidr_ipv4         = "${aws_eip.nat[count.index].public_ip}/32"
}
