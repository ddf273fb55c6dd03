variable "name" {
  type        = string
  description = "Name prefix of every resource, e.g. \"rates-dev\"; Lambda functions are named \"<name>-ingest\" and \"<name>-queue-depth\"."
}

variable "bucket_name" {
  type        = string
  description = "Globally unique name of the batch bucket (the environment derives it from name and account ID)."
}

variable "batch_prefix" {
  type        = string
  description = "Key prefix of batches uploaded through the API (registered by the API itself; no Lambda trigger)."
  default     = "batches/"
}

variable "drop_prefix" {
  type        = string
  description = "Key prefix where batches are dropped from outside; objects created under it, and only there, trigger the ingest Lambda."
  default     = "incoming/"
}

variable "environment" {
  type        = string
  description = "Environment name, the Environment dimension of the queue metrics (copies in one account must not scale each other)."
}

variable "import_prefix" {
  type        = string
  description = "Key prefix of SQL dumps for the import task (no Lambda trigger)."
  default     = "imports/"
}

variable "logs_bucket_id" {
  type        = string
  description = "Bucket that receives this bucket's S3 server access logs."
}

variable "image_uri" {
  type        = string
  description = "Initial image of both Lambda functions (repository URL and tag); the pipeline's release step updates it later."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets the Lambda functions run in."
}

variable "lambda_security_group_id" {
  type        = string
  description = "Security group of the Lambda functions (egress to PostgreSQL and HTTPS only)."
}

variable "db_host" {
  type        = string
  description = "Database host name (RATES_DB_HOST)."
}

variable "db_port" {
  type        = number
  description = "Database port (RATES_DB_PORT)."
}

variable "db_name" {
  type        = string
  description = "Database name (RATES_DB_NAME)."
}

variable "worker_db_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the rates_worker password (JSON key \"password\"); the functions read it at start-up."
}

variable "db_kms_key_arn" {
  type        = string
  description = "KMS key of the database secrets."
}

variable "writer_role_names" {
  type        = map(string)
  description = "IAM roles (by a static key) that may put batches into the bucket under batch_prefix, e.g. { api = <API task role> }."
  default     = {}
}

variable "reader_role_names" {
  type        = map(string)
  description = "IAM roles (by a static key) that may read objects from the bucket, e.g. the worker and import task roles."
  default     = {}
}

variable "reserved_concurrency" {
  type        = number
  description = "Reserved concurrency of the ingest function: caps its parallel database connections."
}

variable "lambda_memory_mib" {
  type        = number
  description = "Memory of the ingest function, in MiB (CPU scales with it)."
  default     = 512
}

variable "lambda_timeout_s" {
  type        = number
  description = "Timeout of the ingest function, in seconds (it registers a batch; the worker does the heavy lifting)."
  default     = 60
}

variable "queue_metric_namespace" {
  type        = string
  description = "CloudWatch namespace the functions may publish metrics to (IngestQueuedBatches, IngestOldestQueuedAgeSeconds)."
  default     = "Rates"
}

variable "batch_expiration_days" {
  type        = number
  description = "Days after which batch objects are deleted (they are in the database by then)."
  default     = 90
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days after which overwritten or deleted object versions are purged."
  default     = 30
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the Lambda log group, in days."
}

variable "kms_deletion_window_days" {
  type        = number
  description = "Waiting period, in days, before a deleted KMS key is gone for good (7-30)."
  default     = 30
}

variable "force_destroy" {
  type        = bool
  description = "Let terraform destroy the batch bucket with objects in it (dev only)."
  default     = false
}

variable "queue_depth_schedule" {
  type        = string
  description = "EventBridge Scheduler expression of the queue-depth function: rate(1 minute), or a per-minute cron limited to the hours the database runs where it stops out of hours."
  default     = "rate(1 minute)"
}

variable "schedule_timezone" {
  type        = string
  description = "IANA time zone of queue_depth_schedule when it is a cron expression."
  default     = "Europe/Dublin"
}
