variable "name" {
  type        = string
  description = "Name prefix of every resource, e.g. \"rates-dev\" (at most 26 characters: the connection name adds \"-github\")."
}

variable "github_repository" {
  type        = string
  description = "GitHub repository \"owner/name\" the pipeline builds (built pipelines; null where promoted_from is set)."
  default     = null

  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like \"owner/name\"."
  }
}

variable "github_branch" {
  type        = string
  description = "Branch whose pushes start the pipeline (built pipelines; null where promoted_from is set)."
  default     = null
}

variable "promoted_from" {
  type        = string
  description = "Name prefix of the environment whose deployed image this pipeline promotes (e.g. \"rates-staging\"): no build, an S3 source, a manual approval, the image copied by digest. Null builds from GitHub."
  default     = null

  validation {
    condition     = var.promoted_from != null || (var.github_repository != null && var.github_branch != null)
    error_message = "A pipeline either builds (github_repository and github_branch) or is promoted (promoted_from)."
  }
}

variable "promotes_to" {
  type        = string
  description = "Name prefix of the environment this pipeline hands its deployed digest to after a successful release (e.g. \"rates-prod\"), whose pipeline it then starts; null for none."
  default     = null
}

variable "import_buildspec_path" {
  type        = string
  description = "Build spec of the image import step of promoted pipelines, relative to the promotion bundle's root."
  default     = "deploy/aws/buildspec-import.yml"
}

variable "hook_package_path" {
  type        = string
  description = "Zip of deploy/aws/hooks/ made by deploy/aws/hooks/package.py (the pre-traffic hook's code)."
}

variable "hook_security_group_id" {
  type        = string
  description = "Security group of the pre-traffic hook function (test listener and HTTPS egress only)."
}

variable "test_listener_url" {
  type        = string
  description = "Base URL of the CodeDeploy test listener the pre-traffic hook checks."
}

variable "smoke_rates_query" {
  type        = string
  description = "Query string of the /rates request the pre-traffic hook makes on the new task set."
  default     = "date_from=2021-01-01&date_to=2021-01-05&origin=CNSGH&destination=NLRTM"
}

variable "buildspec_path" {
  type        = string
  description = "Build spec of the build stage (tests, image, deployment artifacts), relative to the repository root."
  default     = "deploy/aws/buildspec.yml"
}

variable "deploy_buildspec_path" {
  type        = string
  description = "Build spec of the migrate and release steps, relative to the repository root."
  default     = "deploy/aws/buildspec-deploy.yml"
}

variable "build_compute_type" {
  type        = string
  description = "CodeBuild compute type of the build stage (tests and docker build)."
  default     = "BUILD_GENERAL1_MEDIUM"
}

variable "repository_url" {
  type        = string
  description = "ECR repository URL the build pushes to."
}

variable "repository_arn" {
  type        = string
  description = "ECR repository ARN (push rights for the build)."
}

variable "cluster_name" {
  type        = string
  description = "ECS cluster name."
}

variable "cluster_arn" {
  type        = string
  description = "ECS cluster ARN (the migrate task may run only there)."
}

variable "api_service_name" {
  type        = string
  description = "API ECS service deployed blue/green by CodeDeploy."
}

variable "worker_service_name" {
  type        = string
  description = "Worker ECS service the release step rolls forward."
}

variable "task_families" {
  type        = map(string)
  description = "Task definition family per task kind (api, worker, migrate, import)."
}

variable "task_role_arns" {
  type        = map(string)
  description = "Task role ARN per task kind (passed when new revisions are registered)."
}

variable "execution_role_arns" {
  type        = map(string)
  description = "Execution role ARN per task kind (passed when new revisions are registered)."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Subnets of the migrate one-off task."
}

variable "migrate_security_group_id" {
  type        = string
  description = "Security group of the migrate one-off task (the worker group: PostgreSQL and HTTPS egress only)."
}

variable "prod_listener_arn" {
  type        = string
  description = "ALB listener that serves users; CodeDeploy shifts it to the new task set."
}

variable "test_listener_arn" {
  type        = string
  description = "ALB test listener that reaches the new task set before the shift."
}

variable "blue_target_group_name" {
  type        = string
  description = "Name of the blue target group."
}

variable "green_target_group_name" {
  type        = string
  description = "Name of the green target group."
}

variable "rollback_alarm_names" {
  type        = list(string)
  description = "CloudWatch alarms that stop and roll back a deployment (API 5xx ratio and p99 latency)."
}

variable "deployment_config_name" {
  type        = string
  description = "CodeDeploy ECS traffic shift, e.g. CodeDeployDefault.ECSAllAtOnce or CodeDeployDefault.ECSCanary10Percent5Minutes."
}

variable "termination_wait_minutes" {
  type        = number
  description = "Minutes the old (blue) task set keeps running after the shift; an alarm within them still rolls back instantly."
}

variable "lambda_function_names" {
  type        = map(string)
  description = "Lambda functions (running the same image) that the release step updates."
}

variable "lambda_function_arns" {
  type        = map(string)
  description = "ARNs of the same Lambda functions, for the release step's permissions."
}

variable "logs_bucket_id" {
  type        = string
  description = "Bucket that receives the artifact bucket's S3 server access logs."
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the CodeBuild log group, in days."
}

variable "artifact_expiration_days" {
  type        = number
  description = "Days after which pipeline artifacts are deleted."
  default     = 30
}

variable "kms_deletion_window_days" {
  type        = number
  description = "Waiting period, in days, before a deleted KMS key is gone for good (7-30)."
  default     = 30
}

variable "force_destroy" {
  type        = bool
  description = "Let terraform destroy the artifact bucket with objects in it (dev only)."
  default     = false
}
