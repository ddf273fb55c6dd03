# The CodeDeploy pre-traffic hook (deploy/aws/hooks/pre_traffic.py): after the new task set
# answers on the test listener (AfterAllowTestTraffic, named in deploy/aws/appspec.yaml) it
# checks /readyz and one /rates query there and reports Succeeded or Failed; Failed stops the
# deployment before any production traffic moves. A zip-packaged Lambda (python3.12 runtime,
# standard library + the runtime's boto3), so it never ships inside the image it tests.

data "aws_iam_policy_document" "pre_traffic" {
  statement {
    sid       = "ReportVerdict"
    actions   = ["codedeploy:PutLifecycleEventHookExecutionStatus"]
    resources = [local.deployment_group_arn]
  }

  statement {
    sid       = "OwnKey"
    actions   = ["kms:Decrypt"] # its environment variables
    resources = [module.key.arn]
  }
}

module "pre_traffic_role" {
  source = "../lambda_role"

  role_name          = "${var.name}-pre-traffic-hook"
  role_description   = "CodeDeploy pre-traffic hook of ${var.name}: report the verdict of its test-listener checks"
  log_group_name     = "/aws/lambda/${var.name}-pre-traffic"
  log_retention_days = var.log_retention_days
  kms_key_arn        = module.key.arn
  policy_name        = "pre-traffic-hook"
  policy_json        = data.aws_iam_policy_document.pre_traffic.json
}

moved {
  from = aws_cloudwatch_log_group.pre_traffic
  to   = module.pre_traffic_role.aws_cloudwatch_log_group.this
}

moved {
  from = aws_iam_role.pre_traffic
  to   = module.pre_traffic_role.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy_attachment.pre_traffic_vpc
  to   = module.pre_traffic_role.aws_iam_role_policy_attachment.vpc
}

moved {
  from = aws_iam_role_policy_attachment.pre_traffic_xray
  to   = module.pre_traffic_role.aws_iam_role_policy_attachment.xray
}

moved {
  from = aws_iam_role_policy.pre_traffic
  to   = module.pre_traffic_role.aws_iam_role_policy.this
}

resource "aws_lambda_function" "pre_traffic" {
  #checkov:skip=CKV_AWS_116:CodeDeploy waits for the hook's verdict and fails the deployment when none comes within an hour; a dead-letter queue would hold nothing anyone replays.
  #checkov:skip=CKV_AWS_272:The package is built from the reviewed repository (deploy/aws/hooks/package.py) by whoever applies Terraform; no signing profile exists for it.
  function_name                  = local.pre_traffic_function_name
  description                    = "CodeDeploy AfterAllowTestTraffic hook: /readyz and /rates on the test listener"
  role                           = module.pre_traffic_role.role_arn
  runtime                        = "python3.12"
  handler                        = "pre_traffic.handler"
  filename                       = var.hook_package_path
  source_code_hash               = filebase64sha256(var.hook_package_path)
  timeout                        = 300 # two checks x 6 tries x (10 s apart + 5 s timeout), with room
  memory_size                    = 128
  reserved_concurrent_executions = 2 # one deployment at a time per group; a retry at most
  kms_key_arn                    = module.key.arn

  environment {
    variables = {
      TEST_LISTENER_URL = var.test_listener_url
      RATES_QUERY       = var.smoke_rates_query
      CHECK_ATTEMPTS    = "6"
      CHECK_INTERVAL_S  = "10"
      REQUEST_TIMEOUT_S = "5"
    }
  }

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [var.hook_security_group_id]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = module.pre_traffic_role.log_group_name
  }

  depends_on = [module.pre_traffic_role] # its permissions in place before it first runs
}

# AWSCodeDeployRoleForECS may invoke only functions named CodeDeployHook_*: allow this one.
data "aws_iam_policy_document" "codedeploy_hook" {
  statement {
    sid       = "InvokePreTrafficHook"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.pre_traffic.arn]
  }
}

resource "aws_iam_role_policy" "codedeploy_hook" {
  name   = "invoke-pre-traffic-hook"
  role   = aws_iam_role.codedeploy.id
  policy = data.aws_iam_policy_document.codedeploy_hook.json
}
