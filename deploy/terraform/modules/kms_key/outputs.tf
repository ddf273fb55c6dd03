output "arn" {
  description = "ARN of the key: what encryption settings and IAM policies name."
  value       = aws_kms_key.this.arn
}

output "key_id" {
  description = "Id of the key."
  value       = aws_kms_key.this.key_id
}
