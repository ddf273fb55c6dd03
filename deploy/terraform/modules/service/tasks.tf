# Task definitions: one image, the command decides. The entry point is set explicitly (the
# image's ENTRYPOINT is `rates`), so each container's argv is entryPoint + command.
# Passwords and tokens reach containers only through ECS `secrets` (Secrets Manager ARN + JSON
# key), never through `environment`.
# Terraform writes the image tag var.image_tag; the pipeline registers newer revisions of the
# same families with the freshly built image (see deploy/aws/).

locals {
  image = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"

  # The image runs as uid 10001 and writes to /tmp and RATES_DATA_DIR (/var/lib/rates). Fargate
  # scratch volumes are root-owned 0755 unless the Dockerfile declares a VOLUME for the path, so a
  # read-only root file system would leave the app nowhere to write. Turn this on together with
  # `VOLUME ["/tmp", "/var/lib/rates"]` in deploy/docker/Dockerfile and matching mount points.
  read_only_root = false

  db_environment = [
    { name = "RATES_DB_HOST", value = var.db_host },
    { name = "RATES_DB_PORT", value = tostring(var.db_port) },
    { name = "RATES_DB_NAME", value = var.db_name },
  ]

  app_environment = [
    { name = "RATES_STORAGE_S3_BUCKET", value = var.batch_bucket_name },
    { name = "RATES_STORAGE_S3_PREFIX", value = var.batch_prefix },
    { name = "RATES_LOG_FORMAT", value = "json" },
  ]

  master_password_secret = [
    { name = "RATES_DB_PASSWORD", valueFrom = "${var.master_secret_arn}:password::" },
  ]

  containers = {
    api = [{
      name                   = "api"
      image                  = local.image
      essential              = true
      entryPoint             = ["rates"]
      command                = ["serve", "--host", "0.0.0.0", "--port", tostring(var.app_port)]
      portMappings           = [{ containerPort = var.app_port, protocol = "tcp" }]
      readonlyRootFilesystem = local.read_only_root
      stopTimeout            = 30
      environment = concat(local.db_environment, local.app_environment, [
        { name = "RATES_DB_USER", value = "rates_api" },
        { name = "RATES_READ_DB_HOST", value = var.read_db_host },
        { name = "RATES_WORKERS", value = tostring(var.api_workers) },
      ])
      secrets = [
        { name = "RATES_DB_PASSWORD", valueFrom = "${var.login_secret_arns["rates_api"]}:password::" },
        { name = "RATES_INGEST_TOKENS", valueFrom = "${aws_secretsmanager_secret.ingest_tokens.arn}:tokens::" },
      ]
      healthCheck = {
        # Liveness only (no database call), like the ALB's check: a database failover must not
        # make ECS replace every task at once. Readiness (/readyz) is for deploy gates and monitoring.
        command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${var.app_port}/healthz', timeout=2)"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 20
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.ecs.name
          "awslogs-region"        = local.region
          "awslogs-stream-prefix" = "api"
        }
      }
    }]

    worker = [{
      name                   = "worker"
      image                  = local.image
      essential              = true
      entryPoint             = ["rates"]
      command                = ["worker"]
      readonlyRootFilesystem = local.read_only_root
      # The Fargate maximum. Scale-in and deploys wait for a protected worker's batch to end;
      # this bounds only what nothing waits for: a Spot interruption or a stop by hand (SIGTERM:
      # finish within the grace period, else roll back for another worker; then SIGKILL).
      stopTimeout = 120
      environment = concat(local.db_environment, local.app_environment, [
        { name = "RATES_DB_USER", value = "rates_worker" },
        { name = "RATES_WORKER_GRACE_PERIOD_S", value = "110" }, # within stopTimeout
        { name = "RATES_WORKER_PROTECTION_MINUTES", value = tostring(var.worker_protection_minutes) },
      ])
      secrets = [
        { name = "RATES_DB_PASSWORD", valueFrom = "${var.login_secret_arns["rates_worker"]}:password::" },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.ecs.name
          "awslogs-region"        = local.region
          "awslogs-stream-prefix" = "worker"
        }
      }
    }]

    migrate = [{
      name       = "migrate"
      image      = local.image
      essential  = true
      entryPoint = ["sh", "-c"]
      # Post-deploy migrations wait for the pipeline's Contract stage (deploy/aws/pipeline.sh).
      command                = ["rates db migrate --before-deploy && rates db grant-logins"]
      readonlyRootFilesystem = local.read_only_root
      environment = concat(local.db_environment, local.app_environment, [
        { name = "RATES_DB_USER", value = var.master_username },
      ])
      secrets = concat(local.master_password_secret, [
        { name = "RATES_API_DB_PASSWORD", valueFrom = "${var.login_secret_arns["rates_api"]}:password::" },
        { name = "RATES_WORKER_DB_PASSWORD", valueFrom = "${var.login_secret_arns["rates_worker"]}:password::" },
      ])
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.ecs.name
          "awslogs-region"        = local.region
          "awslogs-stream-prefix" = "migrate"
        }
      }
    }]

    # Replaces the SSH jump host: run with a command override naming the dump, e.g.
    # ["db", "load", "s3://<bucket>/imports/rates.sql"] (see the README).
    import = [{
      name                   = "import"
      image                  = local.image
      essential              = true
      entryPoint             = ["rates"]
      command                = ["db", "load", "s3://${var.batch_bucket_name}/${var.import_prefix}rates.sql"]
      readonlyRootFilesystem = local.read_only_root
      environment = concat(local.db_environment, local.app_environment, [
        { name = "RATES_DB_USER", value = var.master_username },
      ])
      secrets = local.master_password_secret
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.ecs.name
          "awslogs-region"        = local.region
          "awslogs-stream-prefix" = "import"
        }
      }
    }]
  }

  task_sizes = {
    api     = { cpu = var.api_cpu, memory = var.api_memory_mib }
    worker  = { cpu = var.worker_cpu, memory = var.worker_memory_mib }
    migrate = { cpu = var.worker_cpu, memory = var.worker_memory_mib }
    import  = { cpu = var.worker_cpu, memory = var.worker_memory_mib }
  }
}

resource "aws_ecs_task_definition" "this" {
  #checkov:skip=CKV_AWS_336:The image runs as non-root uid 10001 and must write /tmp and /var/lib/rates; Fargate scratch volumes are root-owned unless the Dockerfile declares VOLUMEs (see local.read_only_root).
  for_each = local.task_kinds

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = local.task_sizes[each.key].cpu
  memory                   = local.task_sizes[each.key].memory
  execution_role_arn       = aws_iam_role.execution[each.key].arn
  task_role_arn            = aws_iam_role.task[each.key].arn
  container_definitions    = jsonencode(local.containers[each.key])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }
}
