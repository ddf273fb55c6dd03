variable "name" {
  type        = string
  description = "Name prefix of every resource, e.g. \"rates-dev\"; also the ECS cluster name."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets the tasks run in (no public IPs)."
}

variable "api_security_group_id" {
  type        = string
  description = "Security group of the API tasks (ingress only from the ALB)."
}

variable "worker_security_group_id" {
  type        = string
  description = "Security group of the worker and the one-off migrate/import tasks (no ingress)."
}

variable "blue_target_group_arn" {
  type        = string
  description = "Target group the API service starts on; CodeDeploy alternates it with the green one."
}

variable "alb_arn_suffix" {
  type        = string
  description = "ARN suffix of the ALB, for the request-count scaling policies."
}

variable "target_group_arn_suffixes" {
  type        = map(string)
  description = "ARN suffixes of the blue and green target groups (keys \"blue\", \"green\"), for request-count scale-out on whichever one is live."
}

variable "app_port" {
  type        = number
  description = "Port the API container listens on (`rates serve --port`)."
  default     = 8000
}

variable "db_host" {
  type        = string
  description = "Database host name (RATES_DB_HOST)."
}

variable "read_db_host" {
  type        = string
  description = "Database host of the rates query (RATES_READ_DB_HOST): the Aurora reader endpoint."
}

variable "db_port" {
  type        = number
  description = "Database port (RATES_DB_PORT)."
}

variable "db_name" {
  type        = string
  description = "Database name (RATES_DB_NAME)."
}

variable "master_username" {
  type        = string
  description = "Database master user, used only by the migrate and import tasks."
}

variable "master_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the master password (JSON key \"password\")."
}

variable "login_secret_arns" {
  type        = map(string)
  description = "Secrets Manager ARNs of the LOGIN roles' passwords, keyed by role name (\"rates_api\", \"rates_worker\"; JSON key \"password\")."

  validation {
    condition     = alltrue([for role in ["rates_api", "rates_worker"] : contains(keys(var.login_secret_arns), role)])
    error_message = "login_secret_arns needs the keys rates_api and rates_worker."
  }
}

variable "db_kms_key_arn" {
  type        = string
  description = "KMS key that encrypts the database secrets (execution roles get kms:Decrypt on it)."
}

variable "batch_bucket_name" {
  type        = string
  description = "S3 bucket for ingestion batches (RATES_STORAGE_S3_BUCKET)."
}

variable "batch_prefix" {
  type        = string
  description = "Key prefix of ingestion batches inside the bucket (RATES_STORAGE_S3_PREFIX)."
}

variable "import_prefix" {
  type        = string
  description = "Key prefix of SQL dumps the import task loads (`rates db load s3://bucket/<prefix>...`)."
}

variable "image_tag" {
  type        = string
  description = "Image tag terraform puts in new task definition revisions; the pipeline deploys newer tags itself."
}

variable "cpu_architecture" {
  type        = string
  description = "CPU architecture of the image and the Fargate tasks (X86_64 or ARM64)."
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "api_cpu" {
  type        = number
  description = "Fargate CPU units of an API task (256 = 0.25 vCPU)."

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.api_cpu)
    error_message = "api_cpu must be a Fargate size: 256, 512, 1024, 2048 or 4096."
  }
}

variable "api_memory_mib" {
  type        = number
  description = "Memory of an API task, in MiB (must be valid for api_cpu)."
}

variable "api_workers" {
  type        = number
  description = "Server worker processes per API task (RATES_WORKERS); about one per vCPU, at least 1."
}

variable "api_min_count" {
  type        = number
  description = "Minimum number of API tasks during business hours (and always, without out-of-hours scaling)."
}

variable "api_max_count" {
  type        = number
  description = "Maximum number of API tasks."
}

variable "api_cpu_target_percent" {
  type        = number
  description = "Target average CPU utilisation of the API service, in percent."
  default     = 60
}

variable "api_requests_per_target" {
  type        = number
  description = "Target ALB requests per API task per minute before scaling out."
  default     = 1000
}

variable "worker_cpu" {
  type        = number
  description = "Fargate CPU units of a worker task (also used by the migrate and import tasks)."

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.worker_cpu)
    error_message = "worker_cpu must be a Fargate size: 256, 512, 1024, 2048 or 4096."
  }
}

variable "worker_memory_mib" {
  type        = number
  description = "Memory of a worker task, in MiB (must be valid for worker_cpu)."
}

variable "worker_max_count" {
  type        = number
  description = "Maximum number of worker tasks; the worker service scales between 0 and this on queue depth."
}

variable "worker_capacity_provider" {
  type        = string
  description = "FARGATE_SPOT (interruptions are harmless: an interrupted batch is rolled back and re-claimed) or FARGATE."

  validation {
    condition     = contains(["FARGATE", "FARGATE_SPOT"], var.worker_capacity_provider)
    error_message = "worker_capacity_provider must be FARGATE or FARGATE_SPOT."
  }
}

variable "worker_protection_minutes" {
  type        = number
  description = "How long a worker's scale-in protection lasts from the claim of a batch (RATES_WORKER_PROTECTION_MINUTES; ECS allows 1-2880); the longest a batch can hold up a scale-in or deploy."
  default     = 120

  validation {
    condition     = var.worker_protection_minutes >= 1 && var.worker_protection_minutes <= 2880
    error_message = "worker_protection_minutes must be 1-2880 (ECS's limit)."
  }
}

variable "worker_scale_out_steps" {
  type = list(object({
    queue_depth = number
    tasks       = number
  }))
  description = "Worker tasks to run from a given queue depth upwards, ascending by depth; the first entry's depth is the scale-from-zero threshold. Capped at worker_max_count."
  default = [
    { queue_depth = 1, tasks = 1 },
    { queue_depth = 20, tasks = 2 },
    { queue_depth = 100, tasks = 4 },
  ]
}

variable "worker_idle_minutes_before_zero" {
  type        = number
  description = "Minutes the queue must stay empty before the worker service scales to zero."
  default     = 10
}

variable "queue_metric_namespace" {
  type        = string
  description = "CloudWatch namespace of the queue metrics the ingestion Lambda publishes."
  default     = "Rates"
}

variable "queue_metric_dimensions" {
  type        = map(string)
  description = "Dimensions of the queue metrics as the app publishes them ({ Environment = <env> }: copies in one account do not scale each other's workers)."
}

variable "scale_to_zero_out_of_hours" {
  type        = bool
  description = "Scale the API and worker services to zero outside business hours (dev/staging)."
}

variable "business_hours_start_cron" {
  type        = string
  description = "Application Auto Scaling schedule that restores normal capacity."
  default     = "cron(0 7 ? * MON-FRI *)"
}

variable "business_hours_end_cron" {
  type        = string
  description = "Application Auto Scaling schedule that scales everything to zero."
  default     = "cron(0 20 ? * MON-FRI *)"
}

variable "schedule_timezone" {
  type        = string
  description = "IANA time zone of the business-hours schedules."
  default     = "Europe/Dublin"
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the ECS container log group, in days."
}

variable "ecr_keep_images" {
  type        = number
  description = "Number of most recent images the ECR lifecycle policy keeps (rollback targets)."
  default     = 30
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

variable "force_destroy" {
  type        = bool
  description = "Let terraform delete the ECR repository while it still holds images (dev only)."
  default     = false
}
