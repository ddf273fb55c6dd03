# Roles of the pipeline, the CodeBuild projects and CodeDeploy, each limited to this stack (and,
# where it promotes or is promoted, to the one object and image it hands over or takes).

locals {
  passable_role_arns = concat(values(var.task_role_arns), values(var.execution_role_arns))

  codebuild_project_arns = concat(
    aws_codebuild_project.build[*].arn,
    [aws_codebuild_project.deploy.arn],
    aws_codebuild_project.import[*].arn,
  )
}

data "aws_iam_policy_document" "assume" {
  for_each = {
    pipeline   = "codepipeline.amazonaws.com"
    build      = "codebuild.amazonaws.com"
    deploy     = "codebuild.amazonaws.com"
    import     = "codebuild.amazonaws.com"
    codedeploy = "codedeploy.amazonaws.com"
  }

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = [each.value]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Statements shared by the pipeline and both CodeBuild projects: artifacts and their key.
data "aws_iam_policy_document" "artifacts_access" {
  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
  }

  statement {
    sid       = "ArtifactBucket"
    actions   = ["s3:GetBucketLocation", "s3:GetBucketVersioning", "s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]
  }

  statement {
    sid       = "ArtifactKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [module.key.arn]
  }
}

data "aws_iam_policy_document" "build_logs" {
  statement {
    sid       = "BuildLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.codebuild.arn}:*"]
  }
}

# --- CodePipeline --------------------------------------------------------------------------------

resource "aws_iam_role" "pipeline" {
  name               = "${var.name}-codepipeline"
  assume_role_policy = data.aws_iam_policy_document.assume["pipeline"].json
}

data "aws_iam_policy_document" "pipeline" {
  source_policy_documents = [data.aws_iam_policy_document.artifacts_access.json]

  dynamic "statement" {
    for_each = aws_codestarconnections_connection.github[*].arn

    content {
      sid       = "GitHubConnection"
      actions   = ["codestar-connections:UseConnection"]
      resources = [statement.value]
    }
  }

  # Promoted: the S3 source reads the one promotion object from the other environment's bucket.
  dynamic "statement" {
    for_each = local.promoted_froms

    content {
      sid       = "PromotionObject"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = ["arn:${local.partition}:s3:::${local.promoted_from_bucket}/${local.promotion_key}"]
    }
  }

  dynamic "statement" {
    for_each = local.promoted_froms

    content {
      sid       = "PromotionBucket"
      actions   = ["s3:GetBucketVersioning", "s3:GetBucketLocation", "s3:ListBucket"]
      resources = ["arn:${local.partition}:s3:::${local.promoted_from_bucket}"]
    }
  }

  dynamic "statement" {
    for_each = local.promoted_froms

    content {
      sid       = "PromotionKey"
      actions   = ["kms:Decrypt"]
      resources = ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"]

      condition {
        test     = "ForAnyValue:StringEquals"
        variable = "kms:ResourceAliases"
        values   = ["alias/${statement.value}-pipeline"]
      }
    }
  }

  statement {
    sid       = "RunBuilds"
    actions   = ["codebuild:StartBuild", "codebuild:BatchGetBuilds"]
    resources = local.codebuild_project_arns
  }

  statement {
    sid = "BlueGreen"
    actions = [
      "codedeploy:CreateDeployment",
      "codedeploy:GetApplication",
      "codedeploy:GetApplicationRevision",
      "codedeploy:GetDeployment",
      "codedeploy:RegisterApplicationRevision",
    ]
    resources = [
      aws_codedeploy_app.this.arn,
      local.deployment_group_arn,
    ]
  }

  statement {
    sid       = "DeploymentConfig"
    actions   = ["codedeploy:GetDeploymentConfig"]
    resources = ["arn:${local.partition}:codedeploy:${local.region}:${local.account_id}:deploymentconfig:*"]
  }

  statement {
    sid       = "RegisterApiRevision"
    actions   = ["ecs:RegisterTaskDefinition"] # no resource-level permissions for this action
    resources = ["*"]
  }

  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = local.passable_role_arns

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "pipeline" {
  name   = "pipeline"
  role   = aws_iam_role.pipeline.id
  policy = data.aws_iam_policy_document.pipeline.json
}

# --- CodeBuild: build ----------------------------------------------------------------------------

resource "aws_iam_role" "build" {
  count = local.built ? 1 : 0

  name               = "${var.name}-codebuild-build"
  assume_role_policy = data.aws_iam_policy_document.assume["build"].json
}

data "aws_iam_policy_document" "build" {
  source_policy_documents = [
    data.aws_iam_policy_document.artifacts_access.json,
    data.aws_iam_policy_document.build_logs.json,
  ]

  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"] # account-wide call, no resource-level permissions
    resources = ["*"]
  }

  statement {
    sid = "EcrPush"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [var.repository_arn]
  }

  statement {
    sid       = "ReadApiTaskDefinition"
    actions   = ["ecs:DescribeTaskDefinition"] # no resource-level permissions for this action
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "build" {
  count = local.built ? 1 : 0

  name   = "build"
  role   = aws_iam_role.build[0].id
  policy = data.aws_iam_policy_document.build.json
}

# --- CodeBuild: migrate / release ----------------------------------------------------------------

resource "aws_iam_role" "deploy" {
  name               = "${var.name}-codebuild-deploy"
  assume_role_policy = data.aws_iam_policy_document.assume["deploy"].json
}

data "aws_iam_policy_document" "deploy" {
  source_policy_documents = [
    data.aws_iam_policy_document.artifacts_access.json,
    data.aws_iam_policy_document.build_logs.json,
  ]

  statement {
    sid       = "TaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"] # no resource-level permissions
    resources = ["*"]
  }

  statement {
    sid       = "RunMigrateTask"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${var.task_families["migrate"]}:*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }

  statement {
    sid       = "WatchTasks"
    actions   = ["ecs:DescribeTasks"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${var.cluster_name}/*"]
  }

  statement {
    sid       = "RollWorker"
    actions   = ["ecs:UpdateService", "ecs:DescribeServices"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:service/${var.cluster_name}/${var.worker_service_name}"]
  }

  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = local.passable_role_arns

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "UpdateLambdas"
    actions   = ["lambda:UpdateFunctionCode", "lambda:GetFunction", "lambda:GetFunctionConfiguration"]
    resources = values(var.lambda_function_arns)
  }

  statement {
    sid       = "LambdaImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [var.repository_arn]
  }

  # STEP=promote writes the promotion object into this bucket (artifacts_access) and starts the
  # next environment's pipeline.
  dynamic "statement" {
    for_each = local.promotes_to

    content {
      sid       = "StartNextPipeline"
      actions   = ["codepipeline:StartPipelineExecution"]
      resources = ["arn:${local.partition}:codepipeline:${local.region}:${local.account_id}:${statement.value}"]
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "deploy"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}

# --- CodeBuild: import the promoted image (promoted pipelines) ------------------------------------

resource "aws_iam_role" "import" {
  count = local.promoted ? 1 : 0

  name               = "${var.name}-codebuild-import"
  assume_role_policy = data.aws_iam_policy_document.assume["import"].json
}

data "aws_iam_policy_document" "import" {
  count = local.promoted ? 1 : 0

  source_policy_documents = [
    data.aws_iam_policy_document.artifacts_access.json,
    data.aws_iam_policy_document.build_logs.json,
  ]

  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"] # account-wide call, no resource-level permissions
    resources = ["*"]
  }

  statement {
    sid = "PullPromotedImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [local.promoted_from_repository_arn]
  }

  statement {
    sid = "PushToOwnRepository"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [var.repository_arn]
  }

  statement {
    sid       = "ReadApiTaskDefinition"
    actions   = ["ecs:DescribeTaskDefinition"] # no resource-level permissions for this action
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "import" {
  count = local.promoted ? 1 : 0

  name   = "import"
  role   = aws_iam_role.import[0].id
  policy = data.aws_iam_policy_document.import[0].json
}

# --- CodeDeploy ----------------------------------------------------------------------------------

resource "aws_iam_role" "codedeploy" {
  name               = "${var.name}-codedeploy"
  assume_role_policy = data.aws_iam_policy_document.assume["codedeploy"].json
}

resource "aws_iam_role_policy_attachment" "codedeploy" {
  role       = aws_iam_role.codedeploy.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSCodeDeployRoleForECS"
}
