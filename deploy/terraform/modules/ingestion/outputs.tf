output "bucket_name" {
  description = "Name of the batch bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the batch bucket."
  value       = aws_s3_bucket.this.arn
}

output "kms_key_arn" {
  description = "KMS key of the batch bucket, the Lambda environment and the DLQ."
  value       = module.key.arn
}

output "function_names" {
  description = "Names of the Lambda functions (ingest, queue-depth); the pipeline's release step updates their image."
  value       = { for key, fn in aws_lambda_function.this : key => fn.function_name }
}

output "function_arns" {
  description = "ARNs of the Lambda functions (ingest, queue-depth)."
  value       = { for key, fn in aws_lambda_function.this : key => fn.arn }
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue of failed asynchronous invocations."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue, for alarms."
  value       = aws_sqs_queue.dlq.name
}
