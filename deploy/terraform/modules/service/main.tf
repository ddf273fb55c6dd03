# ECS cluster, the image repository, the container log group and the ingest token secret.
# Task definitions are in tasks.tf, IAM in iam.tf, services and autoscaling in services.tf.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
}

resource "aws_kms_key" "service" {
  description             = "${var.name} images, container logs and the ingest token"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsUse"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "service" {
  name          = "alias/${var.name}-service"
  target_key_id = aws_kms_key.service.key_id
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# One image for everything (API, worker, migrate, import, and the ingestion Lambda functions).
resource "aws_ecr_repository" "app" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.service.arn
  }
}

resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name

  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep the ${var.ecr_keep_images} most recent images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

# Lambda pulls the image with its service principal; only this stack's functions may.
resource "aws_ecr_repository_policy" "app" {
  repository = aws_ecr_repository.app.name

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "LambdaPull"
        Effect    = "Allow"
        Principal = { Service = "lambda.amazonaws.com" }
        Action    = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        Condition = {
          StringLike = {
            "aws:sourceArn" = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${var.name}-*"
          }
        }
      },
    ]
  })
}

resource "aws_cloudwatch_log_group" "ecs" {
  #checkov:skip=CKV_AWS_338:Retention is the per-environment variable log_retention_days (365 in prod, shorter in dev/staging to save cost).
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.service.arn
}

# Bearer token(s) for the API's batch upload endpoint. JSON key "tokens": a comma-separated list,
# so a second token can be added before the first is retired.
resource "random_password" "ingest_token" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "ingest_tokens" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: rotate by adding a token to the comma-separated list, moving clients, then removing the old one.
  name                    = "${var.name}/api/ingest-tokens"
  description             = "Bearer tokens accepted by the ${var.name} batch upload endpoint (RATES_INGEST_TOKENS)"
  kms_key_id              = aws_kms_key.service.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "ingest_tokens" {
  secret_id     = aws_secretsmanager_secret.ingest_tokens.id
  secret_string = jsonencode({ tokens = random_password.ingest_token.result })

  lifecycle {
    ignore_changes = [secret_string] # tokens added by hand during a rotation stay
  }
}
