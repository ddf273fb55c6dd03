# Out-of-hours stop (dev/staging): EventBridge Scheduler stops the whole Aurora cluster in the
# evening and starts it before the working day, so nights and weekends cost storage only, not
# the Serverless v2 floor. Aurora starts a cluster that has been stopped for 7 days by itself;
# weekends are shorter. Stop and start are the RDS API calls themselves (universal targets), run
# by a role that may do exactly these two calls on this one cluster.

data "aws_iam_policy_document" "scheduler_assume" {
  count = var.stop_out_of_hours ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  count = var.stop_out_of_hours ? 1 : 0

  name               = "${var.name}-db-schedule"
  description        = "EventBridge Scheduler: stop and start the ${var.name} Aurora cluster out of hours"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume[0].json
}

data "aws_iam_policy_document" "scheduler" {
  count = var.stop_out_of_hours ? 1 : 0

  statement {
    sid       = "StopStartThisCluster"
    actions   = ["rds:StopDBCluster", "rds:StartDBCluster"]
    resources = [aws_rds_cluster.this.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count = var.stop_out_of_hours ? 1 : 0

  name   = "stop-start-cluster"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler[0].json
}

resource "aws_scheduler_schedule" "db" {
  #checkov:skip=CKV_AWS_297:The schedule's only payload is the cluster identifier, no secret; a customer managed key would add a key policy for nothing.
  for_each = var.stop_out_of_hours ? {
    stop  = { cron = var.stop_cron, action = "stopDBCluster" }
    start = { cron = var.start_cron, action = "startDBCluster" }
  } : {}

  name                         = "${var.name}-db-${each.key}"
  description                  = "${each.key} the ${var.name} Aurora cluster (out-of-hours schedule)"
  schedule_expression          = each.value.cron
  schedule_expression_timezone = var.schedule_timezone

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = "arn:${data.aws_partition.current.partition}:scheduler:::aws-sdk:rds:${each.value.action}"
    role_arn = aws_iam_role.scheduler[0].arn
    input    = jsonencode({ DbClusterIdentifier = aws_rds_cluster.this.cluster_identifier })

    # A cluster already stopped (or started by hand) rejects the call: nothing to retry.
    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 3600
    }
  }
}
