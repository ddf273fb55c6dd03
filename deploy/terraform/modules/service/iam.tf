# One execution role (pull the image, write logs, read exactly its secrets) and one task role
# (what the application itself may call) per task kind. S3 access to the batch bucket is granted
# to the task roles by the ingestion module, which owns the bucket and its key.

locals {
  task_kinds = toset(["api", "worker", "migrate", "import"])

  # Secrets each kind's containers receive through ECS `secrets`.
  task_secrets = {
    api     = [var.login_secret_arns["rates_api"], aws_secretsmanager_secret.ingest_tokens.arn]
    worker  = [var.login_secret_arns["rates_worker"]]
    migrate = [var.master_secret_arn, var.login_secret_arns["rates_api"], var.login_secret_arns["rates_worker"]]
    import  = [var.master_secret_arn]
  }

  task_secret_keys = {
    api     = [var.db_kms_key_arn, module.key.arn]
    worker  = [var.db_kms_key_arn]
    migrate = [var.db_kms_key_arn]
    import  = [var.db_kms_key_arn]
  }
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  for_each = local.task_kinds

  name               = "${var.name}-${each.key}-execution"
  description        = "ECS agent for ${each.key} tasks: pull the image, write logs, read its secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  for_each = local.task_kinds

  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"] # account-wide call, no resource-level permissions
    resources = ["*"]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.app.arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.ecs.arn}:log-stream:${each.key}/*"]
  }

  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.task_secrets[each.key]
  }

  statement {
    sid       = "SecretKeys"
    actions   = ["kms:Decrypt"]
    resources = local.task_secret_keys[each.key]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  for_each = local.task_kinds

  name   = "execution"
  role   = aws_iam_role.execution[each.key].id
  policy = data.aws_iam_policy_document.execution[each.key].json
}

# Task roles start empty: the API, worker and import get their S3 rights from the ingestion
# module; migrate needs no AWS API at all.
resource "aws_iam_role" "task" {
  for_each = local.task_kinds

  name               = "${var.name}-${each.key}-task"
  description        = "Application permissions of ${each.key} tasks"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}
