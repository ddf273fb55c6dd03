#!/usr/bin/env bash
# Pipeline steps that talk to ECS and Lambda; CodeBuild runs them (buildspec.yml and
# buildspec-deploy.yml beside this file). Terraform stays the source of truth for task
# definitions: every step copies the family's latest revision and only swaps the image.
#
# Images always travel by digest (repository@sha256:...), never by tag: what staging tested is
# byte for byte what prod runs.
#
#   pipeline.sh artifacts IMAGE_REF OUT_DIR  imageDetail.json, imagedefinitions.json, taskdef.json, appspec.yaml
#   pipeline.sh migrate IMAGE_REF            run the migrate one-off task on IMAGE_REF (migrations that the
#                                            release still serving can live with); fail unless it exits 0
#   pipeline.sh contract IMAGE_REF           after the release: the same task, applying the post-deploy
#                                            migrations too (those removing what the old release used)
#   pipeline.sh release IMAGE_REF            roll the worker service and the Lambda functions to IMAGE_REF
#   pipeline.sh promote IMAGE_REF BUILD_DIR  hand IMAGE_REF (and these scripts) to PROMOTE_TO's pipeline, start it
#   pipeline.sh import IMAGE_REF OUT_DIR     copy a promoted image into this repository, same digest; artifacts
#
# Environment (set on the CodeBuild projects by deploy/terraform/modules/pipeline):
#   artifacts: API_TASK_FAMILY PRE_TRAFFIC_HOOK
#   migrate, contract: CLUSTER MIGRATE_TASK_FAMILY SUBNETS SECURITY_GROUP
#   release:   CLUSTER WORKER_TASK_FAMILY WORKER_SERVICE LAMBDA_FUNCTIONS (space-separated)
#   promote:   ARTIFACT_BUCKET PROMOTE_TO
#   import:    ECR_REPOSITORY_URL (and what artifacts needs)
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

# A repository@sha256:<64 hex> reference, or exit.
require_digest() {
  if [[ ! "$1" =~ ^[^@]+@sha256:[0-9a-f]{64}$ ]]; then
    echo "pipeline: $1 is not an image pinned by digest" >&2
    exit 1
  fi
}

artifacts() {
  local image="$1" out="$2"
  require_digest "$image"
  : "${PRE_TRAFFIC_HOOK:?PRE_TRAFFIC_HOOK names the pre-traffic hook function}"
  mkdir -p "$out"
  printf '{"ImageURI": "%s"}\n' "$image" >"$out/imageDetail.json"
  printf '[{"name": "api", "imageUri": "%s"}, {"name": "worker", "imageUri": "%s"}]\n' \
    "$image" "$image" >"$out/imagedefinitions.json"
  # CodeDeploy fills <IMAGE1_NAME> from imageDetail.json and registers the revision itself.
  latest_task_definition "$API_TASK_FAMILY" |
    jq "$registrable | .containerDefinitions |= map(if .name == \"api\" then .image = \"<IMAGE1_NAME>\" else . end)" \
      >"$out/taskdef.json"
  sed "s|<PRE_TRAFFIC_HOOK>|$PRE_TRAFFIC_HOOK|" "$here/appspec.yaml" >"$out/appspec.yaml"
  echo "artifacts: $(ls "$out" | tr '\n' ' ')for $image"
}

# Run the migrate task on image $2 (its own command, or the JSON container overrides $3), as
# step $1; fail unless it exits 0.
run_migrate_task() {
  local step="$1" image="$2" overrides="${3:-}" task_definition task exit_code reason attempt
  local -a override_args=()
  [[ -z "$overrides" ]] || override_args=(--overrides "$overrides")
  task_definition="$(register_with_image "$MIGRATE_TASK_FAMILY" "$image")"
  echo "$step: running $task_definition"
  task="$(aws ecs run-task --cluster "$CLUSTER" --task-definition "$task_definition" \
    --launch-type FARGATE --count 1 --started-by "codepipeline-$step" "${override_args[@]}" \
    --network-configuration "awsvpcConfiguration={subnets=[$SUBNETS],securityGroups=[$SECURITY_GROUP],assignPublicIp=DISABLED}" \
    --query 'tasks[0].taskArn' --output text)"
  if [[ -z "$task" || "$task" == "None" ]]; then
    echo "$step: ECS started no task (capacity or configuration problem)" >&2
    exit 1
  fi
  # Each wait gives up after 10 minutes; allow up to 30 (the project's build timeout).
  for attempt in 1 2 3; do
    if aws ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "$task"; then
      break
    fi
    echo "$step: still running after wait $attempt"
    [[ "$attempt" -lt 3 ]] || { echo "$step: gave up waiting for $task" >&2; exit 1; }
  done
  exit_code="$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" \
    --query 'tasks[0].containers[?name==`migrate`].exitCode | [0]' --output text)"
  reason="$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" \
    --query 'tasks[0].stoppedReason' --output text)"
  if [[ "$exit_code" != "0" ]]; then
    echo "$step: FAILED (exit code $exit_code, $reason); container log stream migrate/migrate/${task##*/}" >&2
    exit 1
  fi
  echo "$step: done ($task)"
}

# Before any traffic shifts: the task's own command (rates db migrate --before-deploy, then
# the login roles), which leaves post-deploy migrations pending.
migrate() {
  run_migrate_task migrate "$1"
}

# After the blue/green shift and the worker's release, when no task of the old release serves:
# the post-deploy migrations (and any other still pending).
contract() {
  run_migrate_task contract "$1" \
    '{"containerOverrides": [{"name": "migrate", "command": ["rates db migrate"]}]}'
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

promote() {
  local image="$1" build_dir="$2" bundle
  require_digest "$image"
  if [[ "${PROMOTE_TO:-none}" == none ]]; then
    echo "promote: PROMOTE_TO is not set; nothing to hand on" >&2
    exit 1
  fi
  # The bundle is the next pipeline's source: the digest, the commit, and this commit's deploy
  # scripts (so the promoted environment runs the steps that were tested with this image).
  bundle="$(mktemp -d)"
  mkdir -p "$bundle/deploy/aws"
  cp "$here"/{appspec.yaml,buildspec-deploy.yml,buildspec-import.yml,pipeline.sh} "$bundle/deploy/aws/"
  printf '{"ImageURI": "%s"}\n' "$image" >"$bundle/imageDetail.json"
  cp "$build_dir/REVISION" "$bundle/REVISION"
  (cd "$bundle" && zip -q -r -X promotion.zip REVISION imageDetail.json deploy)
  aws s3 cp "$bundle/promotion.zip" "s3://$ARTIFACT_BUCKET/promotions/$PROMOTE_TO.zip"
  aws codepipeline start-pipeline-execution --name "$PROMOTE_TO" --query pipelineExecutionId --output text
  echo "promote: $image (commit $(cat "$build_dir/REVISION")) handed to $PROMOTE_TO, awaiting its approval"
}

import_image() {
  local source="$1" out="$2" digest repository
  require_digest "$source"
  digest="${source##*@}"
  repository="${ECR_REPOSITORY_URL#*/}"
  if ! aws ecr describe-images --repository-name "$repository" --image-ids "imageDigest=$digest" >/dev/null 2>&1; then
    aws ecr get-login-password | skopeo login --username AWS --password-stdin "${ECR_REPOSITORY_URL%%/*}"
    skopeo copy --retry-times 3 "docker://$source" "docker://$ECR_REPOSITORY_URL:promoted-${digest#sha256:}"
  fi
  # The digest is what was approved: stop unless this repository now holds exactly it.
  if [[ "$(aws ecr describe-images --repository-name "$repository" --image-ids "imageDigest=$digest" \
      --query 'imageDetails[0].imageDigest' --output text)" != "$digest" ]]; then
    echo "import: $ECR_REPOSITORY_URL does not hold $digest after the copy" >&2
    exit 1
  fi
  artifacts "$ECR_REPOSITORY_URL@$digest" "$out"
  cp REVISION "$out/REVISION"
}

main() {
  local step="${1:-}"
  case "$step" in
    artifacts) [[ $# -eq 3 ]] || { echo "usage: $0 artifacts IMAGE_REF OUT_DIR" >&2; exit 2; }; artifacts "$2" "$3" ;;
    migrate | contract | release) [[ $# -eq 2 ]] || { echo "usage: $0 $step IMAGE_REF" >&2; exit 2; }; "$step" "$2" ;;
    promote) [[ $# -eq 3 ]] || { echo "usage: $0 promote IMAGE_REF BUILD_DIR" >&2; exit 2; }; promote "$2" "$3" ;;
    import) [[ $# -eq 3 ]] || { echo "usage: $0 import IMAGE_REF OUT_DIR" >&2; exit 2; }; import_image "$2" "$3" ;;
    *) echo "usage: $0 {artifacts IMAGE_REF OUT_DIR | migrate IMAGE_REF | contract IMAGE_REF | release IMAGE_REF | promote IMAGE_REF BUILD_DIR | import IMAGE_REF OUT_DIR}" >&2; exit 2 ;;
  esac
}

main "$@"
