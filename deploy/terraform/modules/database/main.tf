# Aurora PostgreSQL in the database subnets: private, KMS-encrypted, backed up, TLS-only.
# Storage grows by itself; a writer, and readers that scale with load (prod: provisioned
# instances, at least one reader in another AZ as the failover target); or, for dev/staging,
# Serverless v2 instances whose capacity drops to the minimum when idle.
# The master password is managed by RDS in Secrets Manager; the application's LOGIN roles
# (rates_api: read, rates_worker: write) get passwords that Secrets Manager generates as
# ephemeral values, written write-only: no secret value is ever in plan or state.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  # Serverless v2 instances are of the class db.serverless; their size is the cluster's ACU range.
  instance_class = var.serverless ? "db.serverless" : var.instance_class
  autoscaled     = var.reader_max_count > var.reader_min_count
}

# Services (RDS, Secrets Manager) use the key through grants on behalf of callers whose IAM
# policies allow it; the account keeps administration.
module "key" {
  source = "../kms_key"

  alias                = "${var.name}-database"
  description          = "${var.name} database storage, Performance Insights and secrets"
  deletion_window_days = var.kms_deletion_window_days
}

moved {
  from = aws_kms_key.database
  to   = module.key.aws_kms_key.this
}

moved {
  from = aws_kms_alias.database
  to   = module.key.aws_kms_alias.this
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_rds_cluster_parameter_group" "this" {
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

# Created before the cluster so RDS exports into an encrypted group with a retention instead of
# creating a never-expiring one itself.
resource "aws_cloudwatch_log_group" "postgresql" {
  #checkov:skip=CKV_AWS_338:Retention is the per-environment variable log_retention_days (365 in prod, shorter in dev/staging to save cost).
  name              = "/aws/rds/cluster/${var.name}/postgresql"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.arn
}

resource "aws_rds_cluster" "this" {
  #checkov:skip=CKV_AWS_139:deletion_protection is a per-environment variable: true in prod; dev/staging must be destroyable.
  #checkov:skip=CKV2_AWS_8:Aurora's automated backups with point-in-time recovery (backup_retention_days, 30 in prod) are the backup plan; an AWS Backup plan would duplicate them.
  cluster_identifier = var.name
  engine             = "aurora-postgresql"
  engine_mode        = "provisioned" # Serverless v2 instances run in provisioned mode too
  engine_version     = var.engine_version

  database_name                 = var.db_name
  master_username               = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = module.key.arn

  storage_encrypted = true
  kms_key_id        = module.key.arn

  db_subnet_group_name            = aws_db_subnet_group.this.name
  vpc_security_group_ids          = [var.security_group_id]
  port                            = 5432
  db_cluster_parameter_group_name = aws_rds_cluster_parameter_group.this.name

  iam_database_authentication_enabled = true
  allow_major_version_upgrade         = false
  apply_immediately                   = false

  backup_retention_period      = var.backup_retention_days
  preferred_backup_window      = "02:00-03:00"
  preferred_maintenance_window = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot        = true
  delete_automated_backups     = !var.deletion_protection
  deletion_protection          = var.deletion_protection
  skip_final_snapshot          = !var.deletion_protection
  final_snapshot_identifier    = "${var.name}-final"

  enabled_cloudwatch_logs_exports = ["postgresql"]

  dynamic "serverlessv2_scaling_configuration" {
    for_each = var.serverless ? [1] : []

    content {
      min_capacity = var.serverless_min_acu
      max_capacity = var.serverless_max_acu
    }
  }

  depends_on = [aws_cloudwatch_log_group.postgresql]
}

# The writer, and the readers Terraform keeps (reader_min_count; in prod at least one, in
# another AZ, which Aurora promotes within about a minute if the writer fails). Readers
# Application Auto Scaling adds on top are its own.
resource "aws_rds_cluster_instance" "this" {
  count = 1 + var.reader_min_count

  identifier         = "${var.name}-${count.index + 1}"
  cluster_identifier = aws_rds_cluster.this.id
  engine             = aws_rds_cluster.this.engine
  engine_version     = aws_rds_cluster.this.engine_version
  instance_class     = local.instance_class
  promotion_tier     = count.index == 0 ? 0 : 1

  db_subnet_group_name       = aws_db_subnet_group.this.name
  publicly_accessible        = false
  ca_cert_identifier         = "rds-ca-rsa2048-g1"
  auto_minor_version_upgrade = true
  apply_immediately          = false
  copy_tags_to_snapshot      = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = module.key.arn
  performance_insights_retention_period = var.performance_insights_retention_days
  monitoring_interval                   = var.monitoring_interval_s
  monitoring_role_arn                   = aws_iam_role.monitoring.arn

  depends_on = [aws_iam_role_policy_attachment.monitoring]
}

# --- Readers that scale with load --------------------------------------------------------------

resource "aws_appautoscaling_target" "readers" {
  count = local.autoscaled ? 1 : 0

  service_namespace  = "rds"
  scalable_dimension = "rds:cluster:ReadReplicaCount"
  resource_id        = "cluster:${aws_rds_cluster.this.cluster_identifier}"
  min_capacity       = var.reader_min_count
  max_capacity       = var.reader_max_count

  depends_on = [aws_rds_cluster_instance.this]
}

resource "aws_appautoscaling_policy" "readers_cpu" {
  count = local.autoscaled ? 1 : 0

  name               = "${var.name}-readers-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.readers[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.readers[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.readers[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.reader_cpu_target_percent
    scale_in_cooldown  = 600
    scale_out_cooldown = 120

    predefined_metric_specification {
      predefined_metric_type = "RDSReaderAverageCPUUtilization"
    }
  }
}

# --- Application login roles -----------------------------------------------------------------
# Secret JSON: {"username": ..., "password": ...}; containers read the "password" key through
# ECS `secrets`. The password is generated by Secrets Manager as an ephemeral value and written
# write-only (never in plan or state). Rotate by raising login_password_version (a new value is
# written) and re-running the migrate task (`rates db grant-logins` sets it in PostgreSQL).

ephemeral "aws_secretsmanager_random_password" "login" {
  for_each = toset(var.app_login_roles)

  password_length     = 40
  exclude_punctuation = true # alphanumeric: safe in connection strings; 40 chars is ~238 bits
}

resource "aws_secretsmanager_secret" "login" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: rotation is raising login_password_version and re-running the migrate task, which runs `rates db grant-logins` with the new value.
  for_each = toset(var.app_login_roles)

  name                    = "${var.name}/db/${each.key}"
  description             = "PostgreSQL LOGIN role ${each.key} of ${var.name}"
  kms_key_id              = module.key.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "login" {
  for_each = toset(var.app_login_roles)

  secret_id = aws_secretsmanager_secret.login[each.key].id
  secret_string_wo = jsonencode({
    username = each.key
    password = ephemeral.aws_secretsmanager_random_password.login[each.key].random_password
  })
  secret_string_wo_version = var.login_password_version
}
