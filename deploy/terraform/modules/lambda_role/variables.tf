variable "role_name" {
  type        = string
  description = "Name of the functions' IAM role."
}

variable "role_description" {
  type        = string
  description = "What the functions that assume the role do."
}

variable "log_group_name" {
  type        = string
  description = "Name of the functions' log group, e.g. /aws/lambda/<name>."
}

variable "log_retention_days" {
  type        = number
  description = "Days the log group keeps events."
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key that encrypts the log group (its policy must let CloudWatch Logs use it)."
}

variable "policy_name" {
  type        = string
  description = "Name of the role's inline policy."
}

variable "policy_json" {
  type        = string
  description = "The functions' own permissions as a policy document (JSON); writing to the log group is added."
}
