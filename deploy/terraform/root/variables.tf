# Shared by every environment; the values are in envs/<env>/terraform.tfvars.

variable "aws_region" {
  type        = string
  description = "AWS region of the environment."
}

variable "project" {
  type        = string
  description = "Project name, the first part of every resource name."
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod), the second part of every resource name."

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

# --- Network ---------------------------------------------------------------------------------------

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC (/16)."
}

variable "single_nat_gateway" {
  type        = bool
  description = "One shared NAT gateway (dev/staging) instead of one per AZ (prod)."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate ARN for the API's HTTPS listener; null serves plain HTTP (dev only)."
  default     = null
}

variable "api_domain_name" {
  type        = string
  description = "The API's host name, covered by certificate_arn and pointing at the ALB (the pre-traffic hook calls the test listener by it); required with a certificate."
  default     = null

  validation {
    condition     = var.api_domain_name != null || var.certificate_arn == null
    error_message = "Set api_domain_name together with certificate_arn."
  }
}

variable "require_https" {
  type        = bool
  description = "Refuse to plan without certificate_arn (staging, prod)."
}

variable "alb_deletion_protection" {
  type        = bool
  description = "Deletion protection of the load balancer (prod)."
}

# --- Database --------------------------------------------------------------------------------------

variable "db_serverless" {
  type        = bool
  description = "Aurora Serverless v2 instances (dev/staging) instead of provisioned db_instance_class ones (prod)."
}

variable "db_instance_class" {
  type        = string
  description = "Aurora instance class of the writer and readers when not serverless."
}

variable "db_min_acu" {
  type        = number
  description = "Serverless v2 minimum capacity in ACUs (what an idle copy costs)."
}

variable "db_max_acu" {
  type        = number
  description = "Serverless v2 maximum capacity in ACUs."
}

variable "db_reader_min_count" {
  type        = number
  description = "Aurora readers always kept (prod: at least 1, in another AZ, the failover target)."
}

variable "db_reader_max_count" {
  type        = number
  description = "Aurora readers at most; readers between the minimum and this scale on their CPU."
}

variable "db_deletion_protection" {
  type        = bool
  description = "Deletion protection and final snapshot (prod)."
}

variable "db_backup_retention_days" {
  type        = number
  description = "Automated backup retention, in days (1-35)."
}

variable "db_stop_out_of_hours" {
  type        = bool
  description = "Stop the Aurora cluster at night and on weekends (dev/staging); needs scale_to_zero_out_of_hours."

  validation {
    condition     = !var.db_stop_out_of_hours || var.scale_to_zero_out_of_hours
    error_message = "db_stop_out_of_hours needs scale_to_zero_out_of_hours: tasks must not run against a stopped database."
  }
}

variable "db_max_connections_alarm" {
  type        = number
  description = "Alarm threshold on database connections (below the class's max_connections)."
}

# --- Service ---------------------------------------------------------------------------------------

variable "image_tag" {
  type        = string
  description = "Image tag for terraform-registered task definitions and the initial Lambda image (see README: bootstrap)."
}

variable "api_cpu" {
  type        = number
  description = "Fargate CPU units per API task (256 = 0.25 vCPU)."
}

variable "api_memory_mib" {
  type        = number
  description = "Memory per API task, in MiB."
}

variable "api_workers" {
  type        = number
  description = "Server worker processes per API task."
}

variable "api_min_count" {
  type        = number
  description = "Minimum API tasks (business hours)."
}

variable "api_max_count" {
  type        = number
  description = "Maximum API tasks."
}

variable "worker_cpu" {
  type        = number
  description = "Fargate CPU units per worker (and migrate/import) task."
}

variable "worker_memory_mib" {
  type        = number
  description = "Memory per worker (and migrate/import) task, in MiB."
}

variable "worker_max_count" {
  type        = number
  description = "Maximum worker tasks (the minimum is always 0)."
}

variable "worker_capacity_provider" {
  type        = string
  description = "FARGATE_SPOT or FARGATE for the worker service."
}

variable "scale_to_zero_out_of_hours" {
  type        = bool
  description = "Scale API and worker to zero outside business hours (dev/staging)."
}

variable "log_retention_days" {
  type        = number
  description = "Retention of all CloudWatch log groups, in days."
}

variable "secret_recovery_window_days" {
  type        = number
  description = "Recovery window of deleted secrets (0 or 7-30 days)."
}

variable "allow_destroy" {
  type        = bool
  description = "Let terraform destroy non-empty buckets and the image repository (dev only)."
}

# --- Ingestion -------------------------------------------------------------------------------------

variable "lambda_reserved_concurrency" {
  type        = number
  description = "Reserved concurrency of the ingest Lambda."
}

# --- Monitoring and delivery -----------------------------------------------------------------------

variable "alarm_email" {
  type        = string
  description = "E-mail address for alarm notifications; null for none."
  default     = null
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) the pipeline builds; null where the pipeline is promoted (pipeline_promoted_from)."
  default     = null
}

variable "github_branch" {
  type        = string
  description = "Branch the pipeline builds and deploys; null where the pipeline is promoted."
  default     = null
}

variable "pipeline_promoted_from" {
  type        = string
  description = "Environment whose deployed image digest this environment's pipeline takes, after a manual approval, instead of building (prod: staging); null builds from GitHub."
  default     = null
}

variable "pipeline_promotes_to" {
  type        = string
  description = "Environment whose pipeline receives this environment's deployed digest after each successful release (staging: prod); null for none."
  default     = null
}

variable "codedeploy_config_name" {
  type        = string
  description = "CodeDeploy ECS traffic-shifting configuration."
}

variable "codedeploy_termination_wait_minutes" {
  type        = number
  description = "Minutes the old task set stays up after the traffic shift (instant rollback window)."
}
