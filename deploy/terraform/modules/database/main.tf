# RDS PostgreSQL 15 in the database subnets: private, KMS-encrypted, backed up, TLS-only.
# The master password is managed by RDS in Secrets Manager; the application's LOGIN roles
# (rates_api: read, rates_worker: write) get generated passwords in Secrets Manager too.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  log_exports = ["postgresql", "upgrade"]
}

resource "aws_kms_key" "database" {
  description             = "${var.name} database storage, Performance Insights and secrets"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days

  # Services (RDS, Secrets Manager) use the key through grants on behalf of callers whose IAM
  # policies allow it; the account keeps administration.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsUse"
        Effect    = "Allow"
        Principal = { Service = "logs.${data.aws_region.current.name}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "database" {
  name          = "alias/${var.name}-database"
  target_key_id = aws_kms_key.database.key_id
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-${var.parameter_group_family}-" # a prefix, so create_before_destroy can replace it
  family      = var.parameter_group_family

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.slow_query_ms)
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# Created before the instance so RDS exports into encrypted groups with a retention instead of
# creating never-expiring ones itself.
resource "aws_cloudwatch_log_group" "exports" {
  #checkov:skip=CKV_AWS_338:Retention is the per-environment variable log_retention_days (365 in prod, shorter in dev/staging to save cost).
  for_each = toset(local.log_exports)

  name              = "/aws/rds/instance/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.database.arn
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_157:multi_az is a per-environment variable: true in prod; dev/staging run single-AZ to save cost.
  #checkov:skip=CKV_AWS_293:deletion_protection is a per-environment variable: true in prod; dev/staging must be destroyable.
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  db_name                       = var.db_name
  username                      = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.database.arn

  allocated_storage     = var.allocated_storage_gib
  max_allocated_storage = var.max_allocated_storage_gib
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.database.arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [var.security_group_id]
  publicly_accessible    = false
  multi_az               = var.multi_az
  port                   = 5432
  ca_cert_identifier     = "rds-ca-rsa2048-g1"
  parameter_group_name   = aws_db_parameter_group.this.name

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  allow_major_version_upgrade         = false
  apply_immediately                   = false

  backup_retention_period   = var.backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = !var.deletion_protection
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = !var.deletion_protection
  final_snapshot_identifier = "${var.name}-final"

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.database.arn
  performance_insights_retention_period = var.performance_insights_retention_days
  monitoring_interval                   = var.monitoring_interval_s
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  enabled_cloudwatch_logs_exports       = local.log_exports

  depends_on = [aws_iam_role_policy_attachment.monitoring, aws_cloudwatch_log_group.exports]
}

# --- Application login roles -----------------------------------------------------------------
# Secret JSON: {"username": ..., "password": ...}; containers read the "password" key through
# ECS `secrets`. Rotate by replacing the random_password and re-running the migrate task
# (`rates db grant-logins` sets the new password).

resource "random_password" "login" {
  for_each = toset(var.app_login_roles)

  length  = 40
  special = false # alphanumeric: safe in connection strings; 40 chars is ~238 bits
}

resource "aws_secretsmanager_secret" "login" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: rotation is replacing random_password and re-running the migrate task, which runs `rates db grant-logins` with the new value.
  for_each = toset(var.app_login_roles)

  name                    = "${var.name}/db/${each.key}"
  description             = "PostgreSQL LOGIN role ${each.key} of ${var.name}"
  kms_key_id              = aws_kms_key.database.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "login" {
  for_each = toset(var.app_login_roles)

  secret_id = aws_secretsmanager_secret.login[each.key].id
  secret_string = jsonencode({
    username = each.key
    password = random_password.login[each.key].result
  })
}
