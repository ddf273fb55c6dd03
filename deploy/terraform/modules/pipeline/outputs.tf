output "pipeline_name" {
  description = "Name of the CodePipeline."
  value       = aws_codepipeline.this.name
}

output "github_connection_arn" {
  description = "CodeStar connection to GitHub; complete its handshake once in the console (it starts PENDING)."
  value       = aws_codestarconnections_connection.github.arn
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
  description = "CodeBuild project of the build stage."
  value       = aws_codebuild_project.build.name
}

output "deploy_project_name" {
  description = "CodeBuild project of the migrate and release steps."
  value       = aws_codebuild_project.deploy.name
}
