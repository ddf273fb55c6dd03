variable "alias" {
  type        = string
  description = "Alias of the key, without the alias/ prefix, e.g. \"rates-dev-service\"."
}

variable "description" {
  type        = string
  description = "What the key encrypts, shown in the console."
}

variable "deletion_window_days" {
  type        = number
  description = "Waiting period, in days, before a deleted key is gone for good (7-30)."
  default     = 30
}

variable "logs_may_use" {
  type        = bool
  description = "Let CloudWatch Logs use the key for this account's log groups in this region."
  default     = true
}

variable "extra_statements" {
  type        = any
  description = "Further key policy statements (objects as in a policy document), e.g. for a service principal."
  default     = []
}
