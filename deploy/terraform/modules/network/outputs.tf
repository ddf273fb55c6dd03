output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets (ALB, NAT gateways), one per AZ."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets for ECS tasks and Lambda functions, one per AZ."
  value       = aws_subnet.private[*].id
}

output "database_subnet_ids" {
  description = "Database subnets (no internet route), one per AZ."
  value       = aws_subnet.database[*].id
}

output "alb_arn" {
  description = "ARN of the public application load balancer."
  value       = aws_lb.public.arn
}

output "alb_arn_suffix" {
  description = "ARN suffix of the ALB, the LoadBalancer dimension of its CloudWatch metrics."
  value       = aws_lb.public.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the ALB (point the API's domain at it with an alias record)."
  value       = aws_lb.public.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone ID of the ALB, for alias records."
  value       = aws_lb.public.zone_id
}

output "blue_target_group_arn" {
  description = "ARN of the blue target group (the API service starts on it)."
  value       = aws_lb_target_group.blue.arn
}

output "blue_target_group_name" {
  description = "Name of the blue target group, for the CodeDeploy deployment group."
  value       = aws_lb_target_group.blue.name
}

output "blue_target_group_arn_suffix" {
  description = "ARN suffix of the blue target group, for request-count scaling."
  value       = aws_lb_target_group.blue.arn_suffix
}

output "green_target_group_name" {
  description = "Name of the green target group, for the CodeDeploy deployment group."
  value       = aws_lb_target_group.green.name
}

output "green_target_group_arn_suffix" {
  description = "ARN suffix of the green target group, for request-count scaling."
  value       = aws_lb_target_group.green.arn_suffix
}

output "prod_listener_arn" {
  description = "ARN of the listener that serves users (HTTPS 443, or HTTP 80 without a certificate)."
  value       = one(concat(aws_lb_listener.https[*].arn, aws_lb_listener.http[*].arn))
}

output "test_listener_arn" {
  description = "ARN of the CodeDeploy test listener (8443 or 8080, reachable only from inside the VPC)."
  value       = one(concat(aws_lb_listener.test_https[*].arn, aws_lb_listener.test_http[*].arn))
}

output "alb_security_group_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "api_security_group_id" {
  description = "Security group for the API tasks."
  value       = aws_security_group.api.id
}

output "worker_security_group_id" {
  description = "Security group for the worker and the one-off migrate/import tasks."
  value       = aws_security_group.worker.id
}

output "lambda_security_group_id" {
  description = "Security group for the ingestion Lambda functions."
  value       = aws_security_group.lambda.id
}

output "database_security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.database.id
}

output "logs_bucket_id" {
  description = "Name of the bucket that receives ALB, VPC flow and S3 server access logs."
  value       = aws_s3_bucket.logs.id
}

output "web_acl_arn" {
  description = "ARN of the WAF web ACL in front of the ALB."
  value       = aws_wafv2_web_acl.this.arn
}

output "test_listener_url" {
  description = "Base URL of the CodeDeploy test listener as the pre-traffic hook calls it (https://<domain_name>:8443, or http://<ALB DNS name>:8080 without a certificate)."
  value       = local.test_listener_url
}

output "deploy_hook_security_group_id" {
  description = "Security group of the CodeDeploy pre-traffic hook function (test listener and HTTPS egress only)."
  value       = aws_security_group.deploy_hook.id
}
