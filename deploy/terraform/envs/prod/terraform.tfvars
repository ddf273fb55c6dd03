# prod: multi-AZ everything, larger sizes, deletion protection, long retention, canary shifts.
aws_region  = "eu-west-1"
project     = "rates"
environment = "prod"

vpc_cidr                = "10.30.0.0/16"
single_nat_gateway      = false
certificate_arn         = null # REQUIRED: an ACM certificate ARN in eu-west-1 (plan refuses without it)
api_domain_name         = null # REQUIRED with certificate_arn: the host name it covers, pointing at the ALB
require_https           = true
alb_deletion_protection = true

db_serverless            = false
db_instance_class        = "db.r7g.large"
db_min_acu               = 0.5
db_max_acu               = 4
db_reader_min_count      = 1
db_reader_max_count      = 4
db_deletion_protection   = true
db_backup_retention_days = 30
db_max_connections_alarm = 1200  # db.r7g.large allows ~1,800 (memory / 9.5 MB)
db_stop_out_of_hours     = false # always on

image_tag                  = "bootstrap"
api_cpu                    = 1024
api_memory_mib             = 2048
api_workers                = 2
api_min_count              = 2
api_max_count              = 10
worker_cpu                 = 1024
worker_memory_mib          = 2048
worker_max_count           = 8
worker_capacity_provider   = "FARGATE"
scale_to_zero_out_of_hours = false

log_retention_days          = 365
secret_recovery_window_days = 30
allow_destroy               = false

lambda_reserved_concurrency = 10

alarm_email                         = null      # set the on-call address; alarms still drive CodeDeploy rollback without it
pipeline_promoted_from              = "staging" # no build: the digest staging deployed, after an approval
pipeline_promotes_to                = null
codedeploy_config_name              = "CodeDeployDefault.ECSCanary10Percent5Minutes"
codedeploy_termination_wait_minutes = 60
