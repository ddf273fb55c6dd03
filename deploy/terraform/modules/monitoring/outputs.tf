output "topic_arn" {
  description = "ARN of the alarm SNS topic."
  value       = aws_sns_topic.this.arn
}

output "rollback_alarm_names" {
  description = "Alarms that roll back a CodeDeploy blue/green deployment (API 5xx ratio, API p99 latency)."
  value = [
    aws_cloudwatch_metric_alarm.alb_5xx_ratio.alarm_name,
    aws_cloudwatch_metric_alarm.alb_p99_latency.alarm_name,
  ]
}

output "alarm_arns" {
  description = "ARNs of all alarms of this module, by a short key."
  value = merge(
    {
      api_5xx_ratio       = aws_cloudwatch_metric_alarm.alb_5xx_ratio.arn
      api_p99_latency     = aws_cloudwatch_metric_alarm.alb_p99_latency.arn
      ingest_queue_age    = aws_cloudwatch_metric_alarm.ingest_queue_age.arn
      ingest_dead_letters = aws_cloudwatch_metric_alarm.ingest_dead_letters.arn
      db_cpu              = aws_cloudwatch_metric_alarm.rds_cpu.arn
      db_replica_lag      = aws_cloudwatch_metric_alarm.rds_replica_lag.arn
      db_connections      = aws_cloudwatch_metric_alarm.rds_connections.arn
    },
    { for key, alarm in aws_cloudwatch_metric_alarm.ecs_running_tasks_low : "${key}_running_tasks_low" => alarm.arn },
  )
}
