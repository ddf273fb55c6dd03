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
  description = "PostgreSQL version; a major version (\"15\") lets RDS apply minor upgrades."
  default     = "15"
}

variable "parameter_group_family" {
  type        = string
  description = "DB parameter group family matching engine_version."
  default     = "postgres15"
}

variable "instance_class" {
  type        = string
  description = "RDS instance class, e.g. db.t4g.micro (dev) or db.m7g.large (prod)."
}

variable "allocated_storage_gib" {
  type        = number
  description = "Initial gp3 storage, in GiB."
}

variable "max_allocated_storage_gib" {
  type        = number
  description = "Upper bound for storage autoscaling, in GiB (must exceed allocated_storage_gib)."
}

variable "multi_az" {
  type        = bool
  description = "Synchronous standby in a second AZ (true in prod)."
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
