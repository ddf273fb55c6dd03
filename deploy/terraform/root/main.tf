# The one root configuration of every environment: dev, staging and prod differ only by their
# values, envs/<env>/terraform.tfvars, and their state, envs/<env>/backend.hcl (see README.md).

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  name = "${var.project}-${var.environment}"

  batch_bucket_name = "${local.name}-batches-${data.aws_caller_identity.current.account_id}"
  batch_prefix      = "batches/"  # API uploads, registered by the API
  drop_prefix       = "incoming/" # batches dropped from outside, registered by the ingest Lambda
  import_prefix     = "imports/"

  # Custom metrics and their alarms carry the environment: copies in one account stay apart.
  metric_dimensions = { Environment = var.environment }

  # Out-of-hours schedule of dev/staging (EventBridge Scheduler and Application Auto Scaling
  # cron, local time). The services scale to zero at 20:00; the database stops two hours later,
  # once a worker still protected for its batch (RATES_WORKER_PROTECTION_MINUTES, 120) has ended,
  # and starts 30 minutes before the services come back at 07:00. The queue-depth reporter runs
  # only in between, while the database is up.
  schedule_timezone    = "Europe/Dublin"
  business_hours_start = "cron(0 7 ? * MON-FRI *)"
  business_hours_end   = "cron(0 20 ? * MON-FRI *)"
  db_start             = "cron(30 6 ? * MON-FRI *)"
  db_stop              = "cron(0 22 ? * MON-FRI *)"
  queue_depth_schedule = var.db_stop_out_of_hours ? "cron(* 7-21 ? * MON-FRI *)" : "rate(1 minute)"
}

module "network" {
  source = "../modules/network"

  name                    = local.name
  vpc_cidr                = var.vpc_cidr
  single_nat_gateway      = var.single_nat_gateway
  certificate_arn         = var.certificate_arn
  domain_name             = var.api_domain_name
  require_https           = var.require_https
  alb_deletion_protection = var.alb_deletion_protection
  log_retention_days      = var.log_retention_days
  force_destroy           = var.allow_destroy
}

module "database" {
  source = "../modules/database"

  name                        = local.name
  subnet_ids                  = module.network.database_subnet_ids
  security_group_id           = module.network.database_security_group_id
  serverless                  = var.db_serverless
  instance_class              = var.db_instance_class
  serverless_min_acu          = var.db_min_acu
  serverless_max_acu          = var.db_max_acu
  reader_min_count            = var.db_reader_min_count
  reader_max_count            = var.db_reader_max_count
  deletion_protection         = var.db_deletion_protection
  backup_retention_days       = var.db_backup_retention_days
  log_retention_days          = var.log_retention_days
  secret_recovery_window_days = var.secret_recovery_window_days
  stop_out_of_hours           = var.db_stop_out_of_hours
  stop_cron                   = local.db_stop
  start_cron                  = local.db_start
  schedule_timezone           = local.schedule_timezone
}

module "service" {
  source = "../modules/service"

  name                     = local.name
  private_subnet_ids       = module.network.private_subnet_ids
  api_security_group_id    = module.network.api_security_group_id
  worker_security_group_id = module.network.worker_security_group_id
  blue_target_group_arn    = module.network.blue_target_group_arn
  alb_arn_suffix           = module.network.alb_arn_suffix
  target_group_arn_suffixes = {
    blue  = module.network.blue_target_group_arn_suffix
    green = module.network.green_target_group_arn_suffix
  }

  db_host           = module.database.address
  read_db_host      = module.database.reader_address
  db_port           = module.database.port
  db_name           = module.database.db_name
  master_username   = module.database.master_username
  master_secret_arn = module.database.master_secret_arn
  login_secret_arns = module.database.login_secret_arns
  db_kms_key_arn    = module.database.kms_key_arn

  batch_bucket_name = local.batch_bucket_name
  batch_prefix      = local.batch_prefix
  import_prefix     = local.import_prefix

  image_tag                   = var.image_tag
  api_cpu                     = var.api_cpu
  api_memory_mib              = var.api_memory_mib
  api_workers                 = var.api_workers
  api_min_count               = var.api_min_count
  api_max_count               = var.api_max_count
  worker_cpu                  = var.worker_cpu
  worker_memory_mib           = var.worker_memory_mib
  worker_max_count            = var.worker_max_count
  worker_capacity_provider    = var.worker_capacity_provider
  scale_to_zero_out_of_hours  = var.scale_to_zero_out_of_hours
  business_hours_start_cron   = local.business_hours_start
  business_hours_end_cron     = local.business_hours_end
  schedule_timezone           = local.schedule_timezone
  queue_metric_dimensions     = local.metric_dimensions
  log_retention_days          = var.log_retention_days
  secret_recovery_window_days = var.secret_recovery_window_days
  force_destroy               = var.allow_destroy
}

module "ingestion" {
  source = "../modules/ingestion"

  name                     = local.name
  bucket_name              = local.batch_bucket_name
  batch_prefix             = local.batch_prefix
  drop_prefix              = local.drop_prefix
  import_prefix            = local.import_prefix
  environment              = var.environment
  logs_bucket_id           = module.network.logs_bucket_id
  image_uri                = "${module.service.repository_url}:${var.image_tag}"
  private_subnet_ids       = module.network.private_subnet_ids
  lambda_security_group_id = module.network.lambda_security_group_id
  db_host                  = module.database.address
  db_port                  = module.database.port
  db_name                  = module.database.db_name
  worker_db_secret_arn     = module.database.login_secret_arns["rates_worker"]
  db_kms_key_arn           = module.database.kms_key_arn
  reserved_concurrency     = var.lambda_reserved_concurrency
  queue_depth_schedule     = local.queue_depth_schedule
  schedule_timezone        = local.schedule_timezone
  log_retention_days       = var.log_retention_days
  force_destroy            = var.allow_destroy

  writer_role_names = {
    api = module.service.task_role_names["api"]
  }
  reader_role_names = {
    worker = module.service.task_role_names["worker"]
    import = module.service.task_role_names["import"]
  }
}

module "monitoring" {
  source = "../modules/monitoring"

  name                  = local.name
  alarm_email           = var.alarm_email
  alb_arn_suffix        = module.network.alb_arn_suffix
  db_cluster_identifier = module.database.cluster_identifier
  ecs_cluster_name      = module.service.cluster_name
  ecs_service_names = {
    api    = module.service.api_service_name
    worker = module.service.worker_service_name
  }
  dlq_name                = module.ingestion.dlq_name
  queue_metric_dimensions = local.metric_dimensions
  rds_max_connections     = var.db_max_connections_alarm

  queue_metrics_pause_out_of_hours = var.db_stop_out_of_hours
}

module "pipeline" {
  source = "../modules/pipeline"

  name              = local.name
  github_repository = var.github_repository
  github_branch     = var.github_branch
  promoted_from     = var.pipeline_promoted_from == null ? null : "${var.project}-${var.pipeline_promoted_from}"
  promotes_to       = var.pipeline_promotes_to == null ? null : "${var.project}-${var.pipeline_promotes_to}"

  repository_url      = module.service.repository_url
  repository_arn      = module.service.repository_arn
  cluster_name        = module.service.cluster_name
  cluster_arn         = module.service.cluster_arn
  api_service_name    = module.service.api_service_name
  worker_service_name = module.service.worker_service_name
  task_families       = module.service.task_families
  task_role_arns      = module.service.task_role_arns
  execution_role_arns = module.service.execution_role_arns

  private_subnet_ids        = module.network.private_subnet_ids
  migrate_security_group_id = module.network.worker_security_group_id
  prod_listener_arn         = module.network.prod_listener_arn
  test_listener_arn         = module.network.test_listener_arn
  blue_target_group_name    = module.network.blue_target_group_name
  green_target_group_name   = module.network.green_target_group_name

  hook_package_path      = "${path.root}/../../aws/hooks/dist/pre_traffic.zip"
  hook_security_group_id = module.network.deploy_hook_security_group_id
  test_listener_url      = module.network.test_listener_url

  rollback_alarm_names     = module.monitoring.rollback_alarm_names
  deployment_config_name   = var.codedeploy_config_name
  termination_wait_minutes = var.codedeploy_termination_wait_minutes

  lambda_function_names = module.ingestion.function_names
  lambda_function_arns  = module.ingestion.function_arns

  logs_bucket_id     = module.network.logs_bucket_id
  log_retention_days = var.log_retention_days
  force_destroy      = var.allow_destroy
}
