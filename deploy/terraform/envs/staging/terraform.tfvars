# staging: dev sizes, but HTTPS is required and data is kept a week; scaled to zero out of hours.
aws_region  = "eu-west-1"
project     = "rates"
environment = "staging"

vpc_cidr                = "10.20.0.0/16"
single_nat_gateway      = true
certificate_arn         = null # REQUIRED: an ACM certificate ARN in eu-west-1 (plan refuses without it)
api_domain_name         = null # REQUIRED with certificate_arn: the host name it covers, pointing at the ALB
require_https           = true
alb_deletion_protection = false

db_serverless            = true
db_instance_class        = "db.r7g.large" # used only if db_serverless = false
db_min_acu               = 0.5
db_max_acu               = 4
db_reader_min_count      = 0
db_reader_max_count      = 0
db_deletion_protection   = false
db_backup_retention_days = 7
db_max_connections_alarm = 500  # Serverless v2 up to 4 ACUs allows ~800
db_stop_out_of_hours     = true # stopped 22:00-06:30 and at weekends (root/main.tf)

image_tag                  = "bootstrap"
api_cpu                    = 256
api_memory_mib             = 512
api_workers                = 1
api_min_count              = 1
api_max_count              = 3
worker_cpu                 = 256
worker_memory_mib          = 512
worker_max_count           = 2
worker_capacity_provider   = "FARGATE_SPOT"
scale_to_zero_out_of_hours = true

log_retention_days          = 30
secret_recovery_window_days = 7
allow_destroy               = false

lambda_reserved_concurrency = 2

alarm_email                         = null
github_repository                   = "example-org/rates"
github_branch                       = "main"
pipeline_promoted_from              = null
pipeline_promotes_to                = "prod" # each release hands its digest to prod's pipeline
codedeploy_config_name              = "CodeDeployDefault.ECSAllAtOnce"
codedeploy_termination_wait_minutes = 15
