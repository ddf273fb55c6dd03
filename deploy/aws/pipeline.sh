#!/usr/bin/env bash
# Pipeline steps that talk to ECS and Lambda; CodeBuild runs them (buildspec.yml and
# buildspec-deploy.yml beside this file). Terraform stays the source of truth for task
# definitions: every step copies the family's latest revision and only swaps the image.
#
#   pipeline.sh artifacts IMAGE_URI OUT_DIR  imageDetail.json, imagedefinitions.json, taskdef.json, appspec.yaml
#   pipeline.sh migrate IMAGE_URI            run the migrate one-off task on IMAGE_URI; fail unless it exits 0
#   pipeline.sh release IMAGE_URI            roll the worker service and the Lambda functions to IMAGE_URI
#
# Environment (set on the CodeBuild projects by deploy/terraform/modules/pipeline):
#   artifacts: API_TASK_FAMILY
#   migrate:   CLUSTER MIGRATE_TASK_FAMILY SUBNETS SECURITY_GROUP
#   release:   CLUSTER WORKER_TASK_FAMILY WORKER_SERVICE LAMBDA_FUNCTIONS (space-separated)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The fields of describe-task-definition that register-task-definition accepts.
registrable='{family, taskRoleArn, executionRoleArn, networkMode, containerDefinitions, volumes,
  placementConstraints, requiresCompatibilities, cpu, memory, runtimePlatform, ephemeralStorage,
  pidMode, ipcMode, proxyConfiguration} | with_entries(select(.value != null))'

latest_task_definition() {
  aws ecs describe-task-definition --task-definition "$1" --query taskDefinition --output json
}

# Register a new revision of family $1 whose containers run image $2; print its ARN.
register_with_image() {
  local family="$1" image="$2" spec
  spec="$(latest_task_definition "$family" |
    jq --arg image "$image" "$registrable | .containerDefinitions |= map(.image = \$image)")"
  aws ecs register-task-definition --cli-input-json "$spec" \
    --query taskDefinition.taskDefinitionArn --output text
}

artifacts() {
  local image="$1" out="$2"
  mkdir -p "$out"
  printf '{"ImageURI": "%s"}\n' "$image" >"$out/imageDetail.json"
  printf '[{"name": "api", "imageUri": "%s"}, {"name": "worker", "imageUri": "%s"}]\n' \
    "$image" "$image" >"$out/imagedefinitions.json"
  # CodeDeploy fills <IMAGE1_NAME> from imageDetail.json and registers the revision itself.
  latest_task_definition "$API_TASK_FAMILY" |
    jq "$registrable | .containerDefinitions |= map(if .name == \"api\" then .image = \"<IMAGE1_NAME>\" else . end)" \
      >"$out/taskdef.json"
  cp "$here/appspec.yaml" "$out/appspec.yaml"
  echo "artifacts: $(ls "$out" | tr '\n' ' ')for $image"
}

migrate() {
  local image="$1" task_definition task exit_code reason attempt
  task_definition="$(register_with_image "$MIGRATE_TASK_FAMILY" "$image")"
  echo "migrate: running $task_definition"
  task="$(aws ecs run-task --cluster "$CLUSTER" --task-definition "$task_definition" \
    --launch-type FARGATE --count 1 --started-by codepipeline-migrate \
    --network-configuration "awsvpcConfiguration={subnets=[$SUBNETS],securityGroups=[$SECURITY_GROUP],assignPublicIp=DISABLED}" \
    --query 'tasks[0].taskArn' --output text)"
  if [[ -z "$task" || "$task" == "None" ]]; then
    echo "migrate: ECS started no task (capacity or configuration problem)" >&2
    exit 1
  fi
  # Each wait gives up after 10 minutes; allow up to 30 (the project's build timeout).
  for attempt in 1 2 3; do
    if aws ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "$task"; then
      break
    fi
    echo "migrate: still running after wait $attempt"
    [[ "$attempt" -lt 3 ]] || { echo "migrate: gave up waiting for $task" >&2; exit 1; }
  done
  exit_code="$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" \
    --query 'tasks[0].containers[?name==`migrate`].exitCode | [0]' --output text)"
  reason="$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" \
    --query 'tasks[0].stoppedReason' --output text)"
  if [[ "$exit_code" != "0" ]]; then
    echo "migrate: FAILED (exit code $exit_code, $reason); container log stream migrate/migrate/${task##*/}" >&2
    exit 1
  fi
  echo "migrate: done ($task)"
}

release() {
  local image="$1" task_definition function
  task_definition="$(register_with_image "$WORKER_TASK_FAMILY" "$image")"
  aws ecs update-service --cluster "$CLUSTER" --service "$WORKER_SERVICE" \
    --task-definition "$task_definition" --query service.taskDefinition --output text
  for function in $LAMBDA_FUNCTIONS; do
    aws lambda update-function-code --function-name "$function" --image-uri "$image" \
      --query LastUpdateStatus --output text
    aws lambda wait function-updated --function-name "$function"
  done
  echo "release: worker and Lambda functions run $image"
}

main() {
  local step="${1:-}"
  case "$step" in
    artifacts) [[ $# -eq 3 ]] || { echo "usage: $0 artifacts IMAGE_URI OUT_DIR" >&2; exit 2; }; artifacts "$2" "$3" ;;
    migrate | release) [[ $# -eq 2 ]] || { echo "usage: $0 $step IMAGE_URI" >&2; exit 2; }; "$step" "$2" ;;
    *) echo "usage: $0 {artifacts IMAGE_URI OUT_DIR | migrate IMAGE_URI | release IMAGE_URI}" >&2; exit 2 ;;
  esac
}

main "$@"
