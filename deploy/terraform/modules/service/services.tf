# The API service (CodeDeploy blue/green behind the ALB) and the worker service (scales between 0
# and worker_max_count on the IngestQueuedBatches metric: batches waiting, not those being
# applied), their autoscaling, and the optional out-of-hours scale-to-zero schedules.
#
# No batch is stopped by scaling or deploys: a worker sets ECS task scale-in protection while it
# applies a batch (rates.ingest.task_protection), and ECS neither scales in nor replaces a
# protected task; it stops it once the batch has ended and the protection is cleared.

resource "aws_ecs_service" "api" {
  name                              = "${var.name}-api"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this["api"].arn
  desired_count                     = var.api_min_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 60
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"

  deployment_controller {
    type = "CODE_DEPLOY"
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.api_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.blue_target_group_arn
    container_name   = "api"
    container_port   = var.app_port
  }

  lifecycle {
    # CodeDeploy owns the running task definition and target group; autoscaling owns the count.
    ignore_changes = [task_definition, load_balancer, desired_count]
  }
}

resource "aws_ecs_service" "worker" {
  name                    = "${var.name}-worker"
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.this["worker"].arn
  desired_count           = 0 # the queue-depth alarm starts the first task
  platform_version        = "LATEST"
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  capacity_provider_strategy {
    capacity_provider = var.worker_capacity_provider
    weight            = 1
  }

  deployment_controller {
    type = "ECS"
  }

  # New workers start before old ones stop; an old worker that is applying a batch is protected,
  # so the deployment waits for its batch to end before stopping it.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.worker_security_group_id]
    assign_public_ip = false
  }

  lifecycle {
    # The pipeline's release step rolls out new revisions; autoscaling owns the count.
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_ecs_cluster_capacity_providers.this]
}

# --- API autoscaling ---------------------------------------------------------------------------

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.api.name}"
  min_capacity       = var.api_min_count
  max_capacity       = var.api_max_count
}

resource "aws_appautoscaling_policy" "api_cpu" {
  name               = "${var.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension
  resource_id        = aws_appautoscaling_target.api.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.api_cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# Blue/green alternates the live target group, so there is one request-count policy per group.
# They only scale out: the idle group has no data and must not hold up scale-in, which the CPU
# policy does alone (Application Auto Scaling scales in only when every policy that may scale in
# agrees).
resource "aws_appautoscaling_policy" "api_requests" {
  for_each = var.target_group_arn_suffixes

  name               = "${var.name}-api-requests-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension
  resource_id        = aws_appautoscaling_target.api.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.api_requests_per_target
    disable_scale_in   = true
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${var.alb_arn_suffix}/${each.value}"
    }
  }
}

# --- Worker autoscaling: from zero on queue depth -------------------------------------------------

locals {
  scale_out_threshold = var.worker_scale_out_steps[0].queue_depth
  step_count          = length(var.worker_scale_out_steps)
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  min_capacity       = 0
  max_capacity       = var.worker_max_count
}

resource "aws_appautoscaling_policy" "worker_scale_out" {
  name               = "${var.name}-worker-scale-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    metric_aggregation_type = "Maximum"
    cooldown                = 60

    # Bounds are relative to the alarm threshold (the first step's depth).
    dynamic "step_adjustment" {
      for_each = range(local.step_count)

      content {
        metric_interval_lower_bound = var.worker_scale_out_steps[step_adjustment.value].queue_depth - local.scale_out_threshold
        metric_interval_upper_bound = step_adjustment.value + 1 < local.step_count ? var.worker_scale_out_steps[step_adjustment.value + 1].queue_depth - local.scale_out_threshold : null
        scaling_adjustment          = min(var.worker_scale_out_steps[step_adjustment.value].tasks, var.worker_max_count)
      }
    }
  }
}

resource "aws_appautoscaling_policy" "worker_scale_in" {
  name               = "${var.name}-worker-scale-to-zero"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    metric_aggregation_type = "Maximum"
    cooldown                = 300

    step_adjustment {
      metric_interval_upper_bound = 0
      scaling_adjustment          = 0
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "queue_has_work" {
  alarm_name          = "${var.name}-worker-queue-has-work"
  alarm_description   = "Batches are queued: run workers (step scaling on queue depth)."
  namespace           = var.queue_metric_namespace
  metric_name         = "IngestQueuedBatches"
  dimensions          = var.queue_metric_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = local.scale_out_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_appautoscaling_policy.worker_scale_out.arn]
}

resource "aws_cloudwatch_metric_alarm" "queue_empty" {
  alarm_name          = "${var.name}-worker-queue-empty"
  alarm_description   = "Queue empty for ${var.worker_idle_minutes_before_zero} minutes: scale workers to zero."
  namespace           = var.queue_metric_namespace
  metric_name         = "IngestQueuedBatches"
  dimensions          = var.queue_metric_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = var.worker_idle_minutes_before_zero
  threshold           = local.scale_out_threshold
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "missing" # a silent publisher keeps workers rather than dropping them
  actions_enabled     = true
  alarm_actions       = [aws_appautoscaling_policy.worker_scale_in.arn]
}

# --- Out-of-hours scale to zero (dev/staging) ------------------------------------------------

resource "aws_appautoscaling_scheduled_action" "api_off" {
  count = var.scale_to_zero_out_of_hours ? 1 : 0

  name               = "${var.name}-api-off-hours"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension
  resource_id        = aws_appautoscaling_target.api.resource_id
  schedule           = var.business_hours_end_cron
  timezone           = var.schedule_timezone

  scalable_target_action {
    min_capacity = 0
    max_capacity = 0
  }
}

resource "aws_appautoscaling_scheduled_action" "api_on" {
  count = var.scale_to_zero_out_of_hours ? 1 : 0

  name               = "${var.name}-api-business-hours"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension
  resource_id        = aws_appautoscaling_target.api.resource_id
  schedule           = var.business_hours_start_cron
  timezone           = var.schedule_timezone

  scalable_target_action {
    min_capacity = var.api_min_count
    max_capacity = var.api_max_count
  }

  depends_on = [aws_appautoscaling_scheduled_action.api_off] # the API serializes scheduled-action writes per target
}

resource "aws_appautoscaling_scheduled_action" "worker_off" {
  count = var.scale_to_zero_out_of_hours ? 1 : 0

  name               = "${var.name}-worker-off-hours"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id
  schedule           = var.business_hours_end_cron
  timezone           = var.schedule_timezone

  scalable_target_action {
    min_capacity = 0
    max_capacity = 0
  }
}

resource "aws_appautoscaling_scheduled_action" "worker_on" {
  count = var.scale_to_zero_out_of_hours ? 1 : 0

  name               = "${var.name}-worker-business-hours"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id
  schedule           = var.business_hours_start_cron
  timezone           = var.schedule_timezone

  scalable_target_action {
    min_capacity = 0
    max_capacity = var.worker_max_count
  }

  depends_on = [aws_appautoscaling_scheduled_action.worker_off]
}
