variable "name" {
  type        = string
  description = "Name prefix of every resource, e.g. \"rates-dev\"."
}

variable "alarm_email" {
  type        = string
  description = "E-mail address subscribed to the alarm topic (confirm the subscription mail); null subscribes nobody."
  default     = null
}

variable "alb_arn_suffix" {
  type        = string
  description = "ARN suffix of the ALB (LoadBalancer dimension)."
}

variable "db_cluster_identifier" {
  type        = string
  description = "Aurora cluster identifier (DBClusterIdentifier dimension)."
}

variable "ecs_cluster_name" {
  type        = string
  description = "ECS cluster name (ClusterName dimension of Container Insights)."
}

variable "ecs_service_names" {
  type        = map(string)
  description = "ECS services to watch for missing tasks, by a static key (e.g. api, worker)."
}

variable "dlq_name" {
  type        = string
  description = "Name of the ingestion dead-letter queue; any message in it raises an alarm."
}

variable "queue_metric_namespace" {
  type        = string
  description = "CloudWatch namespace of the application's queue metrics."
  default     = "Rates"
}

variable "queue_metric_dimensions" {
  type        = map(string)
  description = "Dimensions of the queue metrics as the app publishes them ({ Environment = <env> })."
}

variable "alb_5xx_percent" {
  type        = number
  description = "Alarm when more than this percentage of requests end in a 5xx (target or ALB) within a minute."
  default     = 5
}

variable "alb_5xx_min_requests" {
  type        = number
  description = "Requests per minute below which the 5xx ratio is not judged (one error in three requests is noise)."
  default     = 20
}

variable "alb_p99_latency_s" {
  type        = number
  description = "Alarm when the p99 target response time exceeds this many seconds."
  default     = 1
}

variable "queue_age_max_s" {
  type        = number
  description = "Alarm when the oldest queued batch has waited longer than this many seconds (also when the metric stops arriving)."
  default     = 900
}

variable "rds_cpu_percent" {
  type        = number
  description = "Alarm when database CPU stays above this percentage for 15 minutes."
  default     = 80
}

variable "replica_lag_max_ms" {
  type        = number
  description = "Alarm when an Aurora reader lags the writer by more than this many milliseconds."
  default     = 5000
}

variable "rds_max_connections" {
  type        = number
  description = "Alarm when database connections exceed this count (set below the instance class's max_connections)."
}

variable "kms_deletion_window_days" {
  type        = number
  description = "Waiting period, in days, before a deleted KMS key is gone for good (7-30)."
  default     = 30
}

variable "queue_metrics_pause_out_of_hours" {
  type        = bool
  description = "The queue metrics stop out of hours with the database (dev/staging): missing queue metrics then do not alarm."
  default     = false
}
