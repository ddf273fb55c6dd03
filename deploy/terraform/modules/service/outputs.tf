output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "repository_url" {
  description = "URL of the ECR repository holding the one application image."
  value       = aws_ecr_repository.app.repository_url
}

output "repository_arn" {
  description = "ARN of the ECR repository."
  value       = aws_ecr_repository.app.arn
}

output "api_service_name" {
  description = "Name of the API ECS service (CodeDeploy blue/green)."
  value       = aws_ecs_service.api.name
}

output "worker_service_name" {
  description = "Name of the worker ECS service (scales from zero on queue depth)."
  value       = aws_ecs_service.worker.name
}

output "task_families" {
  description = "Task definition family per task kind (api, worker, migrate, import)."
  value       = { for kind, td in aws_ecs_task_definition.this : kind => td.family }
}

output "task_role_names" {
  description = "Task (application) role name per task kind, for grants owned by other modules."
  value       = { for kind, role in aws_iam_role.task : kind => role.name }
}

output "task_role_arns" {
  description = "Task (application) role ARN per task kind."
  value       = { for kind, role in aws_iam_role.task : kind => role.arn }
}

output "execution_role_arns" {
  description = "Execution role ARN per task kind (the pipeline passes them when it registers revisions)."
  value       = { for kind, role in aws_iam_role.execution : kind => role.arn }
}

output "log_group_name" {
  description = "CloudWatch log group of all containers (stream prefix = task kind)."
  value       = aws_cloudwatch_log_group.ecs.name
}

output "ingest_tokens_secret_arn" {
  description = "Secrets Manager ARN of the batch upload bearer tokens (JSON key \"tokens\")."
  value       = aws_secretsmanager_secret.ingest_tokens.arn
}

output "kms_key_arn" {
  description = "KMS key of the image repository, container logs and ingest token."
  value       = module.key.arn
}
