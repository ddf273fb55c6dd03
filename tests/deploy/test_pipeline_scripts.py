"""deploy/aws/pipeline.sh moves images by digest only, writes the appspec with the environment's
pre-traffic hook, and hands staging's deployed digest to prod's pipeline as a bundle that prod's
import step can read.

pipeline.sh runs as a real bash process. The AWS CLI is the one thing replaced: an `aws` script
first on PATH answers the few calls these steps make (a task definition, an S3 copy into a local
folder, a pipeline start) and records every call, so the test sees exactly what would be sent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINE_SH = REPO_ROOT / "deploy" / "aws" / "pipeline.sh"
DIGEST = "sha256:" + "ab" * 32
REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rates-staging"
IMAGE_BY_DIGEST = f"{REPO}@{DIGEST}"

FAKE_AWS = r"""#!/usr/bin/env bash
# Stand-in for the AWS CLI: records its arguments, answers the calls pipeline.sh makes.
printf '%s\n' "$*" >>"$AWS_CALLS"
case "$1 $2" in
  "ecs describe-task-definition")
    echo '{"family": "rates-staging-api", "taskRoleArn": "arn:role/task", "networkMode": "awsvpc",
           "containerDefinitions": [{"name": "api", "image": "old"},
                                    {"name": "sidecar", "image": "x"}],
           "revision": 7, "status": "ACTIVE"}' ;;
  "ecs register-task-definition") echo "arn:aws:ecs:eu-west-1:1:task-definition/migrate:8" ;;
  "ecs run-task") echo "arn:aws:ecs:eu-west-1:123456789012:task/rates-staging/0a1b2c" ;;
  "ecs wait") ;;
  "ecs describe-tasks")
    case "$*" in
      *exitCode*) echo "${FAKE_EXIT_CODE:-0}" ;;
      *) echo "Essential container in task exited" ;;
    esac ;;
  "s3 cp") cp "$3" "$AWS_S3_DIR/$(basename "$4")" ;;
  "codepipeline start-pipeline-execution") echo "exec-1" ;;
  *) echo "fake aws: unexpected call: $*" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment with the stand-in `aws` first on PATH and the step's variables set."""
    for tool in ("jq", "zip"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: scripts/bootstrap installs it (apt-get install {tool})")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    (tmp_path / "s3").mkdir()
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "AWS_CALLS": str(tmp_path / "calls.txt"),
        "AWS_S3_DIR": str(tmp_path / "s3"),
        "API_TASK_FAMILY": "rates-staging-api",
        "PRE_TRAFFIC_HOOK": "rates-staging-pre-traffic",
        "ARTIFACT_BUCKET": "rates-staging-pipeline-123456789012",
        "PROMOTE_TO": "rates-prod",
        "CLUSTER": "rates-staging",
        "MIGRATE_TASK_FAMILY": "rates-staging-migrate",
        "SUBNETS": "subnet-1,subnet-2",
        "SECURITY_GROUP": "sg-1",
    }


def run(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(PIPELINE_SH), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(env: dict[str, str]) -> list[str]:
    path = Path(env["AWS_CALLS"])
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("step", ["artifacts", "import", "promote"])
def test_an_image_named_by_tag_is_refused(env: dict[str, str], tmp_path: Path, step: str) -> None:
    """Every step that names an image to deploy refuses a tag (which can move) before it calls
    AWS: only repository@sha256 references travel between stages and environments."""
    result = run(env, step, f"{REPO}:abc123-7", str(tmp_path / "out"))

    assert result.returncode == 1
    assert "is not an image pinned by digest" in result.stderr
    assert calls(env) == []


def test_artifacts_name_the_digest_and_the_environments_hook(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The build's artifacts give CodeDeploy the image by digest and an appspec whose
    AfterAllowTestTraffic hook is this environment's pre-traffic function."""
    out = tmp_path / "out"

    result = run(env, "artifacts", IMAGE_BY_DIGEST, str(out))

    assert result.returncode == 0, result.stderr
    assert json.loads((out / "imageDetail.json").read_text()) == {"ImageURI": IMAGE_BY_DIGEST}
    appspec = yaml.safe_load((out / "appspec.yaml").read_text())
    assert appspec["Hooks"] == [{"AfterAllowTestTraffic": "rates-staging-pre-traffic"}]
    taskdef = json.loads((out / "taskdef.json").read_text())
    images = {c["name"]: c["image"] for c in taskdef["containerDefinitions"]}
    assert images == {"api": "<IMAGE1_NAME>", "sidecar": "x"}
    assert "revision" not in taskdef and "status" not in taskdef


def test_promote_hands_the_deployed_digest_and_its_scripts_to_the_next_pipeline(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Staging's Promote step uploads a bundle holding the digest it deployed, its commit and the
    deploy scripts of that commit to promotions/<next>.zip, then starts the next pipeline."""
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    (build_dir / "REVISION").write_text("0123456789abcdef\n")

    result = run(env, "promote", IMAGE_BY_DIGEST, str(build_dir))

    assert result.returncode == 0, result.stderr
    upload, start = calls(env)
    assert upload.startswith("s3 cp ") and upload.endswith(
        " s3://rates-staging-pipeline-123456789012/promotions/rates-prod.zip"
    )
    assert start.startswith("codepipeline start-pipeline-execution --name rates-prod ")
    with zipfile.ZipFile(tmp_path / "s3" / "rates-prod.zip") as bundle:
        names = set(bundle.namelist())
        assert json.loads(bundle.read("imageDetail.json")) == {"ImageURI": IMAGE_BY_DIGEST}
        assert bundle.read("REVISION").decode().strip() == "0123456789abcdef"
    # What prod's import step reads from its primary source, at these paths.
    import_spec = yaml.safe_load(
        (REPO_ROOT / "deploy" / "aws" / "buildspec-import.yml").read_text()
    )
    assert "imageDetail.json" in " ".join(import_spec["phases"]["build"]["commands"])
    assert {
        "deploy/aws/pipeline.sh",
        "deploy/aws/buildspec-deploy.yml",
        "deploy/aws/buildspec-import.yml",
        "deploy/aws/appspec.yaml",
    } <= names


def test_promote_without_a_next_environment_fails(env: dict[str, str], tmp_path: Path) -> None:
    """A Promote step in a pipeline that promotes nowhere stops instead of writing anything."""
    env["PROMOTE_TO"] = "none"

    result = run(env, "promote", IMAGE_BY_DIGEST, str(tmp_path))

    assert result.returncode == 1
    assert "PROMOTE_TO" in result.stderr
    assert calls(env) == []


def test_migrations_before_the_deploy_leave_post_deploy_ones_for_the_contract_step(
    env: dict[str, str],
) -> None:
    """Migrate runs the task's own command, which leaves post-deploy migrations pending while
    the old release serves (test_terraform checks that command); Contract, after the release,
    runs the same task on the same image with a plain `rates db migrate`. Either fails the
    pipeline when the task does not exit 0."""
    for step in ("migrate", "contract"):
        result = run(env, step, IMAGE_BY_DIGEST)
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith(
            f"{step}: done (arn:aws:ecs:eu-west-1:123456789012:task/rates-staging/0a1b2c)"
        )
    run_tasks = [call for call in calls(env) if call.startswith("ecs run-task ")]
    assert len(run_tasks) == 2
    assert "--overrides" not in run_tasks[0]
    assert "--started-by codepipeline-migrate " in run_tasks[0]
    overrides = run_tasks[1].split("--overrides ", 1)[1].split(" --network-configuration")[0]
    assert json.loads(overrides) == {
        "containerOverrides": [{"name": "migrate", "command": ["rates db migrate"]}]
    }
    # Each registers a revision of the migrate family whose containers run the new image.
    assert sum(call.startswith("ecs register-task-definition") for call in calls(env)) == 2
    sent = Path(env["AWS_CALLS"]).read_text()
    assert f'"image": "{IMAGE_BY_DIGEST}"' in sent and '"image": "old"' not in sent

    env["FAKE_EXIT_CODE"] = "1"
    failed = run(env, "contract", IMAGE_BY_DIGEST)
    assert failed.returncode == 1
    assert "contract: FAILED (exit code 1" in failed.stderr


def test_buildspec_deploys_the_digest_the_push_produced() -> None:
    """The build writes its artifacts for the pushed image's repository digest, not its tag, and
    labels the image with the commit."""
    build = yaml.safe_load((REPO_ROOT / "deploy" / "aws" / "buildspec.yml").read_text())
    commands = build["phases"]["build"]["commands"]
    digest_at = next(i for i, c in enumerate(commands) if ".RepoDigests" in c)
    artifacts_at = next(i for i, c in enumerate(commands) if "pipeline.sh artifacts" in c)
    assert digest_at < artifacts_at
    assert '"$IMAGE_REF"' in commands[artifacts_at]
    assert "REVISION" in build["artifacts"]["files"]
