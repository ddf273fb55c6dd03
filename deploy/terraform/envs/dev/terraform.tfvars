# dev: smallest sizes, single AZ, everything scaled to zero out of hours, destroyable.
aws_region  = "eu-west-1"
project     = "rates"
environment = "dev"

vpc_cidr                = "10.10.0.0/16"
single_nat_gateway      = true
certificate_arn         = null # plain HTTP on the ALB; set an ACM ARN to switch to HTTPS + redirect
api_domain_name         = null # with a certificate: its host name, pointing at the ALB
require_https           = false
alb_deletion_protection = false

db_serverless            = true
db_instance_class        = "db.r7g.large" # used only if db_serverless = false
db_min_acu               = 0.5
db_max_acu               = 2
db_reader_min_count      = 0
db_reader_max_count      = 0
db_deletion_protection   = false
db_backup_retention_days = 1
db_max_connections_alarm = 150  # Serverless v2 up to 2 ACUs allows ~190
db_stop_out_of_hours     = true # stopped 22:00-06:30 and at weekends (root/main.tf)

image_tag                  = "bootstrap" # see README "First apply"; the pipeline deploys newer tags
api_cpu                    = 256
api_memory_mib             = 512
api_workers                = 1
api_min_count              = 1
api_max_count              = 2
worker_cpu                 = 256
worker_memory_mib          = 512
worker_max_count           = 2
worker_capacity_provider   = "FARGATE_SPOT"
scale_to_zero_out_of_hours = true

log_retention_days          = 14
secret_recovery_window_days = 0 # dev stacks are torn down and rebuilt; no 7-day name lock
allow_destroy               = true

lambda_reserved_concurrency = 2

alarm_email                         = null                # e.g. "rates-dev-alerts@example.com"
github_repository                   = "example-org/rates" # the GitHub repository of this project
github_branch                       = "main"
pipeline_promoted_from              = null # dev builds every push to its branch
pipeline_promotes_to                = null
codedeploy_config_name              = "CodeDeployDefault.ECSAllAtOnce"
codedeploy_termination_wait_minutes = 5
