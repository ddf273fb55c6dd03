# Batch bucket (private, SSE-KMS, versioned, TLS-only) whose object-created events invoke the
# ingest Lambda, plus a once-a-minute Lambda that publishes the queue depth the worker service
# scales on. Both functions run the application image; the command picks the handler.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name

  lambda_environment = {
    RATES_DB_HOST                = var.db_host
    RATES_DB_PORT                = tostring(var.db_port)
    RATES_DB_NAME                = var.db_name
    RATES_DB_USER                = "rates_worker"
    RATES_DB_PASSWORD_SECRET_ARN = var.worker_db_secret_arn # an ARN, not the password: read at start-up
    RATES_STORAGE_S3_BUCKET      = var.bucket_name
    RATES_STORAGE_S3_PREFIX      = var.batch_prefix
    RATES_ENVIRONMENT            = var.environment # the Environment dimension of the queue metrics
    RATES_LOG_FORMAT             = "json"
  }
}

module "key" {
  source = "../kms_key"

  alias                = "${var.name}-ingestion"
  description          = "${var.name} batch bucket, Lambda environment, DLQ and logs"
  deletion_window_days = var.kms_deletion_window_days
}

moved {
  from = aws_kms_key.ingestion
  to   = module.key.aws_kms_key.this
}

moved {
  from = aws_kms_alias.ingestion
  to   = module.key.aws_kms_alias.this
}

# --- Bucket --------------------------------------------------------------------------------------

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:Batches are transient inputs that are loaded into the (backed-up) database and can be re-sent; cross-region replication is not worth its cost.
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.key.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-batches"
    status = "Enabled"

    filter {
      prefix = var.batch_prefix
    }

    expiration {
      days = var.batch_expiration_days
    }
  }

  rule {
    id     = "expire-dropped-batches"
    status = "Enabled"

    filter {
      prefix = var.drop_prefix
    }

    expiration {
      days = var.batch_expiration_days
    }
  }

  rule {
    id     = "purge-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_logging" "this" {
  bucket        = aws_s3_bucket.this.id
  target_bucket = var.logs_bucket_id
  target_prefix = "s3-access/${var.bucket_name}/"
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# --- Access for the ECS task roles ----------------------------------------------------------------

data "aws_iam_policy_document" "writer" {
  statement {
    sid = "PutBatches"
    # Get*: the API reads back the version it stored (HEAD) and pins it in the batch.
    actions   = ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.this.arn}/${var.batch_prefix}*"]
  }

  statement {
    sid       = "EncryptBatches"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [module.key.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "reader" {
  statement {
    sid       = "GetObjects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"] # a batch reads the version it pinned
    resources = ["${aws_s3_bucket.this.arn}/*"]
  }

  statement {
    sid       = "DecryptObjects"
    actions   = ["kms:Decrypt"]
    resources = [module.key.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "writer" {
  for_each = var.writer_role_names

  name   = "${var.name}-batches-write"
  role   = each.value
  policy = data.aws_iam_policy_document.writer.json
}

resource "aws_iam_role_policy" "reader" {
  for_each = var.reader_role_names

  name   = "${var.name}-batches-read"
  role   = each.value
  policy = data.aws_iam_policy_document.reader.json
}

# --- Lambda functions ------------------------------------------------------------------------------

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-ingest-dlq"
  kms_master_key_id         = module.key.arn
  message_retention_seconds = 1209600 # 14 days, the maximum: time to replay failed events
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid       = "WorkerPassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.worker_db_secret_arn]
  }

  statement {
    sid       = "WorkerPasswordKey"
    actions   = ["kms:Decrypt"]
    resources = [var.db_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadBatches"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"] # HEAD of the version an event names
    resources = ["${aws_s3_bucket.this.arn}/${var.drop_prefix}*"]
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "OwnKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.key.arn]
  }

  statement {
    sid       = "QueueMetrics"
    actions   = ["cloudwatch:PutMetricData"] # no resource-level permissions; limited by namespace
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.queue_metric_namespace]
    }
  }
}

module "lambda_role" {
  source = "../lambda_role"

  role_name          = "${var.name}-ingestion-lambda"
  role_description   = "Ingest and queue-depth Lambda functions of ${var.name}"
  log_group_name     = "/aws/lambda/${var.name}-ingestion"
  log_retention_days = var.log_retention_days
  kms_key_arn        = module.key.arn
  policy_name        = "ingestion"
  policy_json        = data.aws_iam_policy_document.lambda.json
}

moved {
  from = aws_cloudwatch_log_group.lambda
  to   = module.lambda_role.aws_cloudwatch_log_group.this
}

moved {
  from = aws_iam_role.lambda
  to   = module.lambda_role.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy_attachment.lambda_vpc
  to   = module.lambda_role.aws_iam_role_policy_attachment.vpc
}

moved {
  from = aws_iam_role_policy_attachment.lambda_xray
  to   = module.lambda_role.aws_iam_role_policy_attachment.xray
}

moved {
  from = aws_iam_role_policy.lambda
  to   = module.lambda_role.aws_iam_role_policy.this
}

locals {
  functions = {
    ingest = {
      command     = ["rates.ingest.lambda_handler.handle"]
      timeout_s   = var.lambda_timeout_s
      memory_mib  = var.lambda_memory_mib
      concurrency = var.reserved_concurrency
    }
    queue-depth = {
      command     = ["rates.ingest.lambda_handler.report_queue_depth"]
      timeout_s   = 30
      memory_mib  = 256
      concurrency = 1 # one report a minute; never overlap
    }
  }
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_272:Code signing applies to .zip packages only; this is a container image (package_type Image) from an immutable-tag, scan-on-push ECR repository.
  for_each = local.functions

  function_name                  = "${var.name}-${each.key}"
  description                    = "rates ${each.key} (${each.value.command[0]})"
  role                           = module.lambda_role.role_arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  timeout                        = each.value.timeout_s
  memory_size                    = each.value.memory_mib
  reserved_concurrent_executions = each.value.concurrency
  kms_key_arn                    = module.key.arn

  image_config {
    entry_point = ["python", "-m", "awslambdaric"]
    command     = each.value.command
  }

  environment {
    variables = local.lambda_environment
  }

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [var.lambda_security_group_id]
  }

  tracing_config {
    mode = "Active"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  logging_config {
    log_format = "JSON"
    log_group  = module.lambda_role.log_group_name
  }

  lifecycle {
    ignore_changes = [image_uri] # the pipeline's release step deploys new images
  }

  depends_on = [module.lambda_role] # its permissions in place before it first runs
}

resource "aws_lambda_function_event_invoke_config" "this" {
  for_each = local.functions

  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

# Object created under drop_prefix -> ingest function. Only there: the API registers its own
# uploads (batch_prefix) itself, and an event for them would only find the same batch again.
resource "aws_lambda_permission" "s3" {
  statement_id   = "AllowBatchBucket"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["ingest"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.this.arn
  source_account = local.account_id
}

resource "aws_s3_bucket_notification" "this" {
  bucket = aws_s3_bucket.this.id

  lambda_function {
    lambda_function_arn = aws_lambda_function.this["ingest"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = var.drop_prefix
  }

  depends_on = [aws_lambda_permission.s3]
}

# Every minute -> queue-depth function (publishes IngestQueuedBatches and IngestOldestQueuedAgeSeconds).
# EventBridge Scheduler rather than a rule: its cron has a time zone, so where the database
# stops out of hours (dev/staging) the reporter runs only while the database is up and does not
# fill the dead-letter queue every night.
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-queue-depth-schedule"
  description        = "EventBridge Scheduler: invoke the ${var.name} queue-depth function"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeQueueDepth"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["queue-depth"].arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "invoke-queue-depth"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "queue_depth" {
  #checkov:skip=CKV_AWS_297:The schedule sends no payload at all; a customer managed key would add a key policy for nothing.
  name                         = "${var.name}-queue-depth"
  description                  = "Publish the ingestion queue depth every minute (drives worker scaling)"
  schedule_expression          = var.queue_depth_schedule
  schedule_expression_timezone = var.schedule_timezone

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this["queue-depth"].arn
    role_arn = aws_iam_role.scheduler.arn

    # A missed minute is replaced by the next one: no retries, no stale depth published late.
    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    }
  }
}
