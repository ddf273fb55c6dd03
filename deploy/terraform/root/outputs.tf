output "api_url" {
  description = "Base URL of the API (the ALB's DNS name; point a domain at it for HTTPS)."
  value       = "${var.certificate_arn == null ? "http" : "https"}://${module.network.alb_dns_name}"
}

output "ecr_repository_url" {
  description = "ECR repository the pipeline pushes the image to."
  value       = module.service.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster of the API, worker and one-off tasks."
  value       = module.service.cluster_name
}

output "task_families" {
  description = "Task definition families (api, worker, migrate, import) for `aws ecs run-task`."
  value       = module.service.task_families
}

output "run_task_network" {
  description = "awsvpc network configuration for one-off tasks (`aws ecs run-task --network-configuration`)."
  value       = "awsvpcConfiguration={subnets=[${join(",", module.network.private_subnet_ids)}],securityGroups=[${module.network.worker_security_group_id}],assignPublicIp=DISABLED}"
}

output "batch_bucket_name" {
  description = "S3 bucket for ingestion batches and SQL dumps to import."
  value       = module.ingestion.bucket_name
}

output "github_connection_arn" {
  description = "CodeStar connection to approve once in the console before the first pipeline run."
  value       = module.pipeline.github_connection_arn
}

output "pipeline_name" {
  description = "CodePipeline that builds and deploys this environment."
  value       = module.pipeline.pipeline_name
}

output "alarm_topic_arn" {
  description = "SNS topic of all alarms."
  value       = module.monitoring.topic_arn
}
