variable "name" {
  type        = string
  description = "Name prefix of every resource, e.g. \"rates-dev\"; also the start of target group names (at most 26 characters)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,25}$", var.name))
    error_message = "name must be 2-26 characters of lower-case letters, digits and dashes (target group names add \"-green\" and stop at 32)."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC (a /16 is split into /24 public, /20 private and /24 database subnets over two AZs)."

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr must be a valid IPv4 CIDR of size /16 or larger."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "The two availability zone names to use; empty means \"<region>a\" and \"<region>b\"."
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "availability_zones must be empty or name exactly two zones."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for both AZs (cheaper, dev/staging) instead of one per AZ (prod: an AZ outage does not cut the other AZ off)."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate ARN for the HTTPS listener; null serves plain HTTP on port 80 (only acceptable where require_https is false)."
  default     = null
}

variable "require_https" {
  type        = bool
  description = "Refuse to plan without certificate_arn (set true in staging and prod so HTTP-only never reaches them silently)."
}

variable "alb_deletion_protection" {
  type        = bool
  description = "Protect the load balancer from deletion (true in prod)."
}

variable "app_port" {
  type        = number
  description = "TCP port the API container listens on; the ALB forwards to it and the API security group admits only it."
  default     = 8000
}

variable "health_check_path" {
  type        = string
  description = "Liveness path the ALB target groups probe: the process answers, no database call (a database failover must not mark every task unhealthy at once)."
  default     = "/healthz"
}

variable "waf_rate_limit_per_5min" {
  type        = number
  description = "Requests one client IP may send in a 5-minute window before the WAF blocks it."
  default     = 2000
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the WAF CloudWatch log group, in days."
}

variable "logs_expiration_days" {
  type        = number
  description = "Days after which ALB, VPC flow and S3 access logs are deleted from the logs bucket."
  default     = 90
}

variable "kms_deletion_window_days" {
  type        = number
  description = "Waiting period, in days, before a deleted KMS key is gone for good (7-30)."
  default     = 30
}

variable "force_destroy" {
  type        = bool
  description = "Let terraform destroy the logs bucket with objects in it (dev only)."
  default     = false
}

variable "domain_name" {
  type        = string
  description = "The API's domain name, covered by certificate_arn and pointing at the ALB; the pre-traffic hook calls the HTTPS test listener by it. Required with a certificate."
  default     = null

  validation {
    condition     = var.domain_name == null || can(regex("^[a-z0-9.-]+$", var.domain_name))
    error_message = "domain_name must be a plain host name, e.g. rates.example.com."
  }
}
