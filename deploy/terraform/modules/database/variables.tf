variable "name" {
  type        = string
  description = "Name prefix of every resource, e.g. \"rates-dev\"."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Database subnets (at least two AZs, no internet route)."
}

variable "security_group_id" {
  type        = string
  description = "Security group of the database (admits 5432 only from the API, worker and Lambda groups)."
}

variable "engine_version" {
  type        = string
  description = "Aurora PostgreSQL version (minor upgrades are applied automatically in the maintenance window)."
  default     = "16.6"
}

variable "parameter_group_family" {
  type        = string
  description = "Cluster parameter group family matching engine_version."
  default     = "aurora-postgresql16"
}

variable "serverless" {
  type        = bool
  description = "Serverless v2 instances (dev/staging: capacity follows load down to serverless_min_acu) instead of provisioned instance_class ones (prod)."
}

variable "instance_class" {
  type        = string
  description = "Instance class of the writer and readers when not serverless, e.g. db.r7g.large."
}

variable "serverless_min_acu" {
  type        = number
  description = "Serverless v2 minimum capacity in ACUs (0.5 ACU ~ 1 GiB of memory): what an idle copy costs."
  default     = 0.5
}

variable "serverless_max_acu" {
  type        = number
  description = "Serverless v2 maximum capacity in ACUs."
  default     = 4
}

variable "reader_min_count" {
  type        = number
  description = "Readers Terraform keeps (prod: at least 1, the Multi-AZ failover target; 0 runs the writer alone)."
}

variable "reader_max_count" {
  type        = number
  description = "Upper bound of readers; above reader_min_count, Application Auto Scaling adds readers on their average CPU."

  validation {
    condition     = var.reader_max_count <= 15
    error_message = "An Aurora cluster has at most 15 readers."
  }
}

variable "reader_cpu_target_percent" {
  type        = number
  description = "Average reader CPU, in percent, that reader autoscaling keeps."
  default     = 60
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse deletion and take a final snapshot on destroy (true in prod)."
}

variable "backup_retention_days" {
  type        = number
  description = "Days of automated backups and point-in-time recovery (1-35)."

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be 1-35: backups are never off."
  }
}

variable "performance_insights_retention_days" {
  type        = number
  description = "Performance Insights retention in days (7 is free; otherwise a multiple of 31, up to 731)."
  default     = 7
}

variable "monitoring_interval_s" {
  type        = number
  description = "Enhanced monitoring interval in seconds (1, 5, 10, 15, 30 or 60)."
  default     = 60
}

variable "db_name" {
  type        = string
  description = "Name of the application database."
  default     = "rates"
}

variable "master_username" {
  type        = string
  description = "Master user; only the migrate/import one-off tasks log in as it. Its password is managed by RDS in Secrets Manager."
  default     = "rates_admin"
}

variable "login_password_version" {
  type        = number
  description = "Version of the LOGIN roles' write-only passwords; raise it to write new ones (then run the migrate task)."
  default     = 1
}

variable "app_login_roles" {
  type        = list(string)
  description = "Application LOGIN roles that get a generated password in Secrets Manager (created in PostgreSQL by `rates db grant-logins`)."
  default     = ["rates_api", "rates_worker"]
}

variable "slow_query_ms" {
  type        = number
  description = "Statements slower than this are logged (log_min_duration_statement), in milliseconds."
  default     = 1000
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the exported PostgreSQL and upgrade logs, in days."
}

variable "secret_recovery_window_days" {
  type        = number
  description = "Days a deleted secret can be restored (0 deletes at once, for throwaway dev stacks; 7-30 otherwise)."
}

variable "kms_deletion_window_days" {
  type        = number
  description = "Waiting period, in days, before a deleted KMS key is gone for good (7-30)."
  default     = 30
}

variable "stop_out_of_hours" {
  type        = bool
  description = "Stop the cluster at stop_cron and start it at start_cron (dev/staging: nights and weekends cost storage only)."
  default     = false
}

variable "stop_cron" {
  type        = string
  description = "EventBridge Scheduler expression that stops the cluster (after the services have scaled to zero and any protected batch has ended)."
  default     = "cron(0 22 ? * MON-FRI *)"
}

variable "start_cron" {
  type        = string
  description = "EventBridge Scheduler expression that starts the cluster (early enough to be available when the services scale back up)."
  default     = "cron(30 6 ? * MON-FRI *)"
}

variable "schedule_timezone" {
  type        = string
  description = "IANA time zone of stop_cron and start_cron."
  default     = "Europe/Dublin"
}
