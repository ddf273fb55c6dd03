# Alarm topic (KMS-encrypted SNS) and the alarms: API errors and latency (also CodeDeploy's
# rollback triggers), ingestion queue age and dead letters, database health, missing ECS tasks.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  actions    = [aws_sns_topic.this.arn]
}

module "key" {
  source = "../kms_key"

  alias                = "${var.name}-alarms"
  description          = "${var.name} alarm topic"
  deletion_window_days = var.kms_deletion_window_days
  logs_may_use         = false
  extra_statements = [{
    Sid       = "CloudWatchAlarmsPublish"
    Effect    = "Allow"
    Principal = { Service = "cloudwatch.amazonaws.com" }
    Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
    Resource  = "*"
  }]
}

moved {
  from = aws_kms_key.alarms
  to   = module.key.aws_kms_key.this
}

moved {
  from = aws_kms_alias.alarms
  to   = module.key.aws_kms_alias.this
}

resource "aws_sns_topic" "this" {
  name              = "${var.name}-alarms"
  kms_master_key_id = module.key.arn
}

resource "aws_sns_topic_policy" "this" {
  arn = aws_sns_topic.this.arn

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountManages"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"]
        Resource  = aws_sns_topic.this.arn
      },
      {
        Sid       = "CloudWatchAlarmsPublish"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "SNS:Publish"
        Resource  = aws_sns_topic.this.arn
        Condition = {
          ArnLike = { "aws:SourceArn" = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:*" }
        }
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- API (also the CodeDeploy rollback alarms) ------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "alb_5xx_ratio" {
  alarm_name          = "${var.name}-api-5xx-ratio"
  alarm_description   = "More than ${var.alb_5xx_percent}% of API requests failed with a 5xx (target or ALB). Rolls back a blue/green deployment."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alb_5xx_percent
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id          = "ratio"
    label       = "5xx percent of requests"
    expression  = "IF(FILL(requests, 0) >= ${var.alb_5xx_min_requests}, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "target5xx"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "elb5xx"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "alb_p99_latency" {
  alarm_name          = "${var.name}-api-p99-latency"
  alarm_description   = "p99 API response time above ${var.alb_p99_latency_s} s. Rolls back a blue/green deployment."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = var.alb_p99_latency_s
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

# --- Ingestion ---------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "ingest_queue_age" {
  alarm_name          = "${var.name}-ingest-queue-age"
  alarm_description   = "A batch has waited more than ${var.queue_age_max_s} s, or the queue metrics stopped arriving (reporter or database down)."
  namespace           = var.queue_metric_namespace
  metric_name         = "IngestOldestQueuedAgeSeconds"
  dimensions          = var.queue_metric_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.queue_age_max_s
  comparison_operator = "GreaterThanThreshold"
  # Missing metrics mean the reporter or the database is down, except where the reporter pauses
  # with the database out of hours (dev/staging): there a dead reporter shows as workers that do
  # not scale out, not as this alarm.
  treat_missing_data = var.queue_metrics_pause_out_of_hours ? "notBreaching" : "breaching"
  actions_enabled    = true
  alarm_actions      = local.actions
  ok_actions         = local.actions
}

resource "aws_cloudwatch_metric_alarm" "ingest_dead_letters" {
  alarm_name          = "${var.name}-ingest-dead-letters"
  alarm_description   = "Ingestion Lambda events failed after retries and wait in the DLQ (replay them after the fix)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.dlq_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

# --- Database ------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "rds_cpu" {
  alarm_name          = "${var.name}-db-cpu"
  alarm_description   = "Writer CPU above ${var.rds_cpu_percent}% for 15 minutes (readers scale by themselves)."
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBClusterIdentifier = var.db_cluster_identifier, Role = "WRITER" }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.rds_cpu_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

# Aurora storage grows by itself; what can hurt readers is lag: /rates reads the reader endpoint.
resource "aws_cloudwatch_metric_alarm" "rds_replica_lag" {
  alarm_name          = "${var.name}-db-replica-lag"
  alarm_description   = "A reader lags the writer by more than ${var.replica_lag_max_ms} ms for 5 minutes: /rates answers from stale data."
  namespace           = "AWS/RDS"
  metric_name         = "AuroraReplicaLagMaximum"
  dimensions          = { DBClusterIdentifier = var.db_cluster_identifier }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.replica_lag_max_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching" # no reader, no lag
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "rds_connections" {
  alarm_name          = "${var.name}-db-connections"
  alarm_description   = "More than ${var.rds_max_connections} database connections (pools of too many tasks?)."
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBClusterIdentifier = var.db_cluster_identifier }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.rds_max_connections
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

# --- ECS -----------------------------------------------------------------------------------------

# Running below desired for 5 minutes: tasks crash, fail health checks or cannot be placed.
# Relative to the desired count, so scaling to zero (out of hours, idle worker) is not an alarm.
resource "aws_cloudwatch_metric_alarm" "ecs_running_tasks_low" {
  for_each = var.ecs_service_names

  alarm_name          = "${var.name}-${each.key}-running-tasks-low"
  alarm_description   = "${each.value}: fewer running tasks than desired for 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "missing"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id          = "missing"
    label       = "desired minus running tasks"
    expression  = "FILL(desired, 0) - FILL(running, 0)"
    return_data = true
  }

  metric_query {
    id = "desired"

    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "DesiredTaskCount"
      dimensions  = { ClusterName = var.ecs_cluster_name, ServiceName = each.value }
      period      = 60
      stat        = "Maximum"
    }
  }

  metric_query {
    id = "running"

    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      dimensions  = { ClusterName = var.ecs_cluster_name, ServiceName = each.value }
      period      = 60
      stat        = "Minimum"
    }
  }
}
