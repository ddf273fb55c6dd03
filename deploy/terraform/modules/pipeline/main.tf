# Two shapes of one pipeline, chosen by variables (see README.md):
#   built    GitHub -> CodeBuild (tests, image by digest, artifacts) -> migrate one-off task ->
#            CodeDeploy ECS blue/green for the API (pre-traffic hook, auto rollback on failure and
#            on alarm) -> release (worker service and Lambda functions on the new image) ->
#            contract (post-deploy migrations)
#            [-> promote: hand the deployed digest to the next environment's pipeline]
#   promoted the digest another environment deployed (S3 source) -> manual approval -> import
#            the image into this environment's repository, same digest -> migrate -> blue/green
#            -> release -> contract; nothing is built again.
# IAM is in iam.tf, the artifact bucket in artifacts.tf, the pre-traffic hook in hooks.tf.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Same artifact names in both shapes, so the migrate, deploy, release and contract steps are
  # identical:
  # source = the deploy scripts (the repository, or the promotion bundle of the same commit),
  # build = imageDetail.json (the image by digest), taskdef.json, appspec.yaml.
  source_artifact = "source_output"
  build_artifact  = "build_output"

  promoted       = var.promoted_from != null
  built          = !local.promoted
  promotion_key  = "promotions/${var.name}.zip"
  promotes_to    = var.promotes_to == null ? [] : [var.promotes_to]
  promoted_froms = local.promoted ? [var.promoted_from] : []

  # Another environment's artifact bucket and image repository (names are deterministic: every
  # environment is the same root configuration with other values, in the same account).
  promoted_from_bucket = local.promoted ? "${var.promoted_from}-pipeline-${local.account_id}" : null
  promoted_from_repository_arn = (
    local.promoted ? "arn:${local.partition}:ecr:${local.region}:${local.account_id}:repository/${var.promoted_from}" : null
  )

  deployment_group_arn      = "arn:${local.partition}:codedeploy:${local.region}:${local.account_id}:deploymentgroup:${aws_codedeploy_app.this.name}/${var.name}-api"
  pre_traffic_function_name = "${var.name}-pre-traffic"
}

module "key" {
  source = "../kms_key"

  alias                = "${var.name}-pipeline"
  description          = "${var.name} pipeline artifacts and build logs"
  deletion_window_days = var.kms_deletion_window_days
}

moved {
  from = aws_kms_key.pipeline
  to   = module.key.aws_kms_key.this
}

moved {
  from = aws_kms_alias.pipeline
  to   = module.key.aws_kms_alias.this
}

# Created PENDING: a person completes the GitHub handshake once in the console (see README).
resource "aws_codestarconnections_connection" "github" {
  count = local.built ? 1 : 0

  name          = "${var.name}-github"
  provider_type = "GitHub"
}

resource "aws_cloudwatch_log_group" "codebuild" {
  #checkov:skip=CKV_AWS_338:Retention is the per-environment variable log_retention_days (365 in prod, shorter in dev/staging to save cost).
  name              = "/codebuild/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.arn
}

resource "aws_codebuild_project" "build" {
  #checkov:skip=CKV_AWS_316:docker build needs privileged mode; the project only builds this repository's pipeline source, never untrusted pull requests.
  count = local.built ? 1 : 0

  name           = "${var.name}-build"
  description    = "Run .ci/run, build and push the image, write the deployment artifacts"
  service_role   = aws_iam_role.build[0].arn
  encryption_key = module.key.arn
  build_timeout  = 60

  source {
    type      = "CODEPIPELINE"
    buildspec = var.buildspec_path
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    type            = "LINUX_CONTAINER"
    compute_type    = var.build_compute_type
    image           = "aws/codebuild/standard:7.0"
    privileged_mode = true

    environment_variable {
      name  = "ECR_REPOSITORY_URL"
      value = var.repository_url
    }

    environment_variable {
      name  = "API_TASK_FAMILY"
      value = var.task_families["api"]
    }

    environment_variable {
      name  = "PRE_TRAFFIC_HOOK"
      value = local.pre_traffic_function_name
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name  = aws_cloudwatch_log_group.codebuild.name
      stream_name = "build"
    }

    s3_logs {
      status = "DISABLED"
    }
  }
}

resource "aws_codebuild_project" "deploy" {
  name           = "${var.name}-deploy-step"
  description    = "STEP=migrate: run the migrate one-off task on the new image; STEP=release: roll the worker and Lambda functions forward; STEP=contract: post-deploy migrations"
  service_role   = aws_iam_role.deploy.arn
  encryption_key = module.key.arn
  build_timeout  = 30

  source {
    type      = "CODEPIPELINE"
    buildspec = var.deploy_buildspec_path
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    type         = "LINUX_CONTAINER"
    compute_type = "BUILD_GENERAL1_SMALL"
    image        = "aws/codebuild/standard:7.0"

    environment_variable {
      name  = "CLUSTER"
      value = var.cluster_name
    }

    environment_variable {
      name  = "MIGRATE_TASK_FAMILY"
      value = var.task_families["migrate"]
    }

    environment_variable {
      name  = "WORKER_TASK_FAMILY"
      value = var.task_families["worker"]
    }

    environment_variable {
      name  = "WORKER_SERVICE"
      value = var.worker_service_name
    }

    environment_variable {
      name  = "SUBNETS"
      value = join(",", var.private_subnet_ids)
    }

    environment_variable {
      name  = "SECURITY_GROUP"
      value = var.migrate_security_group_id
    }

    environment_variable {
      name  = "LAMBDA_FUNCTIONS"
      value = join(" ", values(var.lambda_function_names))
    }

    environment_variable {
      name  = "BUILD_ARTIFACT"
      value = local.build_artifact
    }

    # STEP=promote: where the deployed digest is handed on, and whose pipeline it starts.
    environment_variable {
      name  = "ARTIFACT_BUCKET"
      value = aws_s3_bucket.artifacts.id
    }

    environment_variable {
      name  = "PROMOTE_TO"
      value = coalesce(var.promotes_to, "none")
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name  = aws_cloudwatch_log_group.codebuild.name
      stream_name = "deploy"
    }

    s3_logs {
      status = "DISABLED"
    }
  }
}

# Promoted pipelines only: copy the approved image, by digest, from the environment it came from
# into this environment's repository, then write this environment's deployment artifacts.
resource "aws_codebuild_project" "import" {
  count = local.promoted ? 1 : 0

  name           = "${var.name}-import-image"
  description    = "Copy the promoted image by digest into ${var.name}'s repository; write imageDetail.json, taskdef.json, appspec.yaml"
  service_role   = aws_iam_role.import[0].arn
  encryption_key = module.key.arn
  build_timeout  = 30

  source {
    type      = "CODEPIPELINE"
    buildspec = var.import_buildspec_path
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    type         = "LINUX_CONTAINER"
    compute_type = "BUILD_GENERAL1_SMALL"
    image        = "aws/codebuild/standard:7.0"

    environment_variable {
      name  = "ECR_REPOSITORY_URL"
      value = var.repository_url
    }

    environment_variable {
      name  = "API_TASK_FAMILY"
      value = var.task_families["api"]
    }

    environment_variable {
      name  = "PRE_TRAFFIC_HOOK"
      value = local.pre_traffic_function_name
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name  = aws_cloudwatch_log_group.codebuild.name
      stream_name = "import"
    }

    s3_logs {
      status = "DISABLED"
    }
  }
}

resource "aws_codedeploy_app" "this" {
  name             = var.name
  compute_platform = "ECS"
}

resource "aws_codedeploy_deployment_group" "api" {
  app_name               = aws_codedeploy_app.this.name
  deployment_group_name  = "${var.name}-api"
  service_role_arn       = aws_iam_role.codedeploy.arn
  deployment_config_name = var.deployment_config_name

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  blue_green_deployment_config {
    deployment_ready_option {
      action_on_timeout = "CONTINUE_DEPLOYMENT"
    }

    terminate_blue_instances_on_deployment_success {
      action                           = "TERMINATE"
      termination_wait_time_in_minutes = var.termination_wait_minutes
    }
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }

  alarm_configuration {
    enabled = true
    alarms  = var.rollback_alarm_names
  }

  ecs_service {
    cluster_name = var.cluster_name
    service_name = var.api_service_name
  }

  load_balancer_info {
    target_group_pair_info {
      prod_traffic_route {
        listener_arns = [var.prod_listener_arn]
      }

      test_traffic_route {
        listener_arns = [var.test_listener_arn]
      }

      target_group {
        name = var.blue_target_group_name
      }

      target_group {
        name = var.green_target_group_name
      }
    }
  }
}

resource "aws_codepipeline" "this" {
  name     = var.name
  role_arn = aws_iam_role.pipeline.arn

  artifact_store {
    type     = "S3"
    location = aws_s3_bucket.artifacts.id

    encryption_key {
      type = "KMS"
      id   = module.key.arn
    }
  }

  # --- Source: the repository (built) or the digest another environment deployed (promoted) ---
  dynamic "stage" {
    for_each = local.built ? ["GitHub"] : []

    content {
      name = "Source"

      action {
        name             = stage.value
        category         = "Source"
        owner            = "AWS"
        provider         = "CodeStarSourceConnection"
        version          = "1"
        output_artifacts = [local.source_artifact]

        configuration = {
          ConnectionArn        = aws_codestarconnections_connection.github[0].arn
          FullRepositoryId     = var.github_repository
          BranchName           = var.github_branch
          OutputArtifactFormat = "CODE_ZIP"
          DetectChanges        = "true"
        }
      }
    }
  }

  # The promotion bundle (imageDetail.json with the digest, the commit, the deploy scripts of that
  # commit), written by the other environment's Promote step, which then starts this pipeline.
  dynamic "stage" {
    for_each = local.promoted_froms

    content {
      name = "Source"

      action {
        name             = "PromotedFrom-${stage.value}"
        category         = "Source"
        owner            = "AWS"
        provider         = "S3"
        version          = "1"
        output_artifacts = [local.source_artifact]

        configuration = {
          S3Bucket             = local.promoted_from_bucket
          S3ObjectKey          = local.promotion_key
          PollForSourceChanges = "false"
        }
      }
    }
  }

  dynamic "stage" {
    for_each = local.built ? ["Build"] : []

    content {
      name = stage.value

      action {
        name             = "TestBuildPush"
        category         = "Build"
        owner            = "AWS"
        provider         = "CodeBuild"
        version          = "1"
        input_artifacts  = [local.source_artifact]
        output_artifacts = [local.build_artifact]

        configuration = {
          ProjectName = aws_codebuild_project.build[0].name
        }
      }
    }
  }

  # A person promotes: nothing reaches this environment without an approval of the exact
  # digest and commit (both in the approval's review link target, the promotion bundle).
  dynamic "stage" {
    for_each = local.promoted_froms

    content {
      name = "Approve"

      action {
        name     = "PromoteFrom-${stage.value}"
        category = "Approval"
        owner    = "AWS"
        provider = "Manual"
        version  = "1"

        configuration = {
          CustomData = "Deploy to ${var.name} the image ${stage.value} deployed and tested (same digest; see imageDetail.json and REVISION in s3://${local.promoted_from_bucket}/${local.promotion_key})."
        }
      }
    }
  }

  dynamic "stage" {
    for_each = local.promoted_froms

    content {
      name = "ImportImage"

      action {
        name             = "CopyByDigest"
        category         = "Build"
        owner            = "AWS"
        provider         = "CodeBuild"
        version          = "1"
        input_artifacts  = [local.source_artifact]
        output_artifacts = [local.build_artifact]

        configuration = {
          ProjectName = aws_codebuild_project.import[0].name
        }
      }
    }
  }

  # Migrations run before any traffic reaches the new code; they are backward compatible
  # (expand, then contract), so the old task set keeps working against the new schema.
  stage {
    name = "Migrate"

    action {
      name            = "MigrateOneOffTask"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = [local.source_artifact, local.build_artifact]

      configuration = {
        ProjectName          = aws_codebuild_project.deploy.name
        PrimarySource        = local.source_artifact
        EnvironmentVariables = jsonencode([{ name = "STEP", value = "migrate", type = "PLAINTEXT" }])
      }
    }
  }

  stage {
    name = "Deploy"

    action {
      name            = "ApiBlueGreen"
      category        = "Deploy"
      owner           = "AWS"
      provider        = "CodeDeployToECS"
      version         = "1"
      input_artifacts = [local.build_artifact]

      configuration = {
        ApplicationName                = aws_codedeploy_app.this.name
        DeploymentGroupName            = aws_codedeploy_deployment_group.api.deployment_group_name
        TaskDefinitionTemplateArtifact = local.build_artifact
        TaskDefinitionTemplatePath     = "taskdef.json"
        AppSpecTemplateArtifact        = local.build_artifact
        AppSpecTemplatePath            = "appspec.yaml"
        Image1ArtifactName             = local.build_artifact
        Image1ContainerName            = "IMAGE1_NAME"
      }
    }
  }

  stage {
    name = "Release"

    action {
      name            = "WorkerAndLambdas"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = [local.source_artifact, local.build_artifact]

      configuration = {
        ProjectName          = aws_codebuild_project.deploy.name
        PrimarySource        = local.source_artifact
        EnvironmentVariables = jsonencode([{ name = "STEP", value = "release", type = "PLAINTEXT" }])
      }
    }
  }

  # Post-deploy migrations: the old API task set gets no traffic after the shift and the worker
  # runs the new image, so what only the old release used can go (rates.db.migrate).
  stage {
    name = "Contract"

    action {
      name            = "PostDeployMigrations"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = [local.source_artifact, local.build_artifact]

      configuration = {
        ProjectName          = aws_codebuild_project.deploy.name
        PrimarySource        = local.source_artifact
        EnvironmentVariables = jsonencode([{ name = "STEP", value = "contract", type = "PLAINTEXT" }])
      }
    }
  }

  # Hand the digest this environment now runs (and the deploy scripts of its commit) to the next
  # environment, and start that environment's pipeline, which waits for an approval.
  dynamic "stage" {
    for_each = local.promotes_to

    content {
      name = "Promote"

      action {
        name            = "HandTo-${stage.value}"
        category        = "Build"
        owner           = "AWS"
        provider        = "CodeBuild"
        version         = "1"
        input_artifacts = [local.source_artifact, local.build_artifact]

        configuration = {
          ProjectName          = aws_codebuild_project.deploy.name
          PrimarySource        = local.source_artifact
          EnvironmentVariables = jsonencode([{ name = "STEP", value = "promote", type = "PLAINTEXT" }])
        }
      }
    }
  }
}
