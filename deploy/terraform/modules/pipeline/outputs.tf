output "pipeline_name" {
  description = "Name of the CodePipeline."
  value       = aws_codepipeline.this.name
}

output "github_connection_arn" {
  description = "CodeStar connection to GitHub (built pipelines; null where the pipeline is promoted); complete its handshake once in the console (it starts PENDING)."
  value       = one(aws_codestarconnections_connection.github[*].arn)
}

output "artifact_bucket_name" {
  description = "Name of the pipeline artifact bucket."
  value       = aws_s3_bucket.artifacts.id
}

output "codedeploy_app_name" {
  description = "CodeDeploy application of the API."
  value       = aws_codedeploy_app.this.name
}

output "codedeploy_deployment_group_name" {
  description = "CodeDeploy blue/green deployment group of the API."
  value       = aws_codedeploy_deployment_group.api.deployment_group_name
}

output "build_project_name" {
  description = "CodeBuild project of the build stage (null where the pipeline is promoted)."
  value       = one(aws_codebuild_project.build[*].name)
}

output "deploy_project_name" {
  description = "CodeBuild project of the migrate and release steps."
  value       = aws_codebuild_project.deploy.name
}

output "pre_traffic_hook_function_name" {
  description = "Lambda function CodeDeploy runs after test traffic reaches the new task set (AfterAllowTestTraffic)."
  value       = aws_lambda_function.pre_traffic.function_name
}

output "promotion_object" {
  description = "s3://bucket/key where this pipeline hands its deployed digest to promotes_to (null when it promotes nowhere)."
  value       = var.promotes_to == null ? null : "s3://${aws_s3_bucket.artifacts.id}/promotions/${var.promotes_to}.zip"
}
