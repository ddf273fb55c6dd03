output "role_arn" {
  description = "ARN of the role, for the functions' role argument."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Name of the log group, for the functions' logging_config."
  value       = aws_cloudwatch_log_group.this.name
}

