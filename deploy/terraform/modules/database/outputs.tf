output "cluster_identifier" {
  description = "Aurora cluster identifier, the DBClusterIdentifier dimension of its CloudWatch metrics."
  value       = aws_rds_cluster.this.cluster_identifier
}

output "address" {
  description = "Writer endpoint of the cluster (RATES_DB_HOST): ingestion, batch views, migrations."
  value       = aws_rds_cluster.this.endpoint
}

output "reader_address" {
  description = "Reader endpoint of the cluster (RATES_READ_DB_HOST): the rates query; it resolves to the writer while the cluster has no reader."
  value       = aws_rds_cluster.this.reader_endpoint
}

output "port" {
  description = "Port of the database (RATES_DB_PORT)."
  value       = aws_rds_cluster.this.port
}

output "db_name" {
  description = "Name of the application database (RATES_DB_NAME)."
  value       = aws_rds_cluster.this.database_name
}

output "master_username" {
  description = "Master user name, used only by the migrate and import one-off tasks."
  value       = aws_rds_cluster.this.master_username
}

output "master_secret_arn" {
  description = "ARN of the RDS-managed Secrets Manager secret with the master password (JSON key \"password\")."
  value       = aws_rds_cluster.this.master_user_secret[0].secret_arn
}

output "login_secret_arns" {
  description = "Map of application LOGIN role name (rates_api, rates_worker) to its Secrets Manager secret ARN (JSON key \"password\")."
  value       = { for role, secret in aws_secretsmanager_secret.login : role => secret.arn }
}

output "kms_key_arn" {
  description = "KMS key that encrypts the database storage and all database secrets; readers of the secrets need kms:Decrypt on it."
  value       = module.key.arn
}
