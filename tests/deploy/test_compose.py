"""compose.yaml resolves with `docker-compose config` and wires a safe, ordered local stack.

No Docker engine runs here: the file is checked with the compose CLI's own parser and the
resolved model it prints, and the Prometheus config with promtool.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose.yaml"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "monitoring" / "prometheus.yml"
RULES_DIR = REPO_ROOT / "deploy" / "monitoring" / "rules"

# Values the test passes for the required variables; any secret-like setting must resolve to one
# of them (it came from a variable) or be a *_FILE path to a mounted secret.
REQUIRED_VARIABLES = {"MINIO_ROOT_PASSWORD": "sentinel-minio-password-from-environment"}
SECRET_FILES = ("db_password", "ingest_tokens")
ONE_SHOT_SERVICES = {"minio-setup", "migrate"}
APP_SERVICES = ("migrate", "api", "worker")
SECRET_LIKE = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)


@dataclass(frozen=True)
class ComposeRun:
    returncode: int
    stdout: str
    stderr: str


def _docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(
            "docker-compose is not on PATH; install it with `apt-get install docker-compose` "
            "(its `config` command validates compose.yaml without a Docker engine)"
        )
    return path


def _run_config(
    tmp: Path, variables: dict[str, str], *, with_secrets_dir: bool = True
) -> ComposeRun:
    """`docker-compose config` with exactly `variables`: no developer shell values, no .env file."""
    secrets_dir = tmp / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for name in SECRET_FILES:
        (secrets_dir / name).write_text(f"test-{name}\n")
    env_file = tmp / "empty.env"
    env_file.write_text("")
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), **variables}
    if with_secrets_dir:
        environment["RATES_SECRETS_DIR"] = str(secrets_dir)
    result = subprocess.run(
        [_docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return ComposeRun(result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def compose_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compose")


@pytest.fixture(scope="module")
def config(compose_tmp: Path) -> dict[str, Any]:
    """The resolved compose model, with the required variables set."""
    run = _run_config(compose_tmp, REQUIRED_VARIABLES)
    assert run.returncode == 0, run.stderr
    model = yaml.safe_load(run.stdout)
    assert isinstance(model, dict)
    return model


def _services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = config["services"]
    assert isinstance(services, dict)
    return services


def _long_running(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in _services(config).items():
        if name not in ONE_SHOT_SERVICES:
            yield name, service


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return False
    test = check.get("test")
    return bool(test) and test not in (["NONE"], "NONE")


def _conditions(service: dict[str, Any]) -> dict[str, str]:
    depends_on = service.get("depends_on") or {}
    if isinstance(depends_on, list):  # short syntax means service_started
        return dict.fromkeys(depends_on, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends_on.items()}


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) for each volume, from v1 strings or v2 mappings."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target, *options = volume.split(":")
            read_only = bool(options) and "ro" in options[0].split(",")
            mounts.append((source, target, read_only))
        else:
            mounts.append((volume["source"], volume["target"], bool(volume.get("read_only"))))
    return mounts


def _published_ports(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host_ip, container_port) for each published port, from v1 strings or v2 mappings."""
    ports = []
    for port in service.get("ports") or []:
        if isinstance(port, str):
            parts = port.split("/")[0].split(":")
            host_ip = parts[0] if len(parts) == 3 else ""
            ports.append((host_ip, parts[-1]))
        else:
            ports.append((str(port.get("host_ip", "")), str(port["target"])))
    return ports


def test_config_resolves_with_the_required_settings(compose_tmp: Path) -> None:
    """With the required variables and secret files provided, `docker-compose config` exits 0."""
    run = _run_config(compose_tmp, REQUIRED_VARIABLES)
    assert run.returncode == 0, run.stderr
    assert {"postgres", "minio", "minio-setup", "migrate", "api", "worker", "prometheus"} <= set(
        yaml.safe_load(run.stdout)["services"]
    )


@pytest.mark.parametrize("missing", sorted(REQUIRED_VARIABLES))
def test_config_fails_when_a_required_variable_is_missing(compose_tmp: Path, missing: str) -> None:
    """Leaving out a required secret variable stops compose with a message naming it."""
    variables = {k: v for k, v in REQUIRED_VARIABLES.items() if k != missing}
    run = _run_config(compose_tmp, variables)
    assert run.returncode != 0
    assert missing in run.stderr


def test_secrets_are_files_outside_the_repository_by_default(
    config: dict[str, Any], compose_tmp: Path
) -> None:
    """Secrets are files from RATES_SECRETS_DIR (default ./.secrets), never inline values."""
    declared = config["secrets"]
    assert set(declared) == set(SECRET_FILES)
    for name, spec in declared.items():
        assert Path(spec["file"]) == compose_tmp / "secrets" / name
    default = _run_config(compose_tmp, REQUIRED_VARIABLES, with_secrets_dir=False)
    assert default.returncode == 0, default.stderr
    for name, spec in yaml.safe_load(default.stdout)["secrets"].items():
        assert Path(spec["file"]) == REPO_ROOT / ".secrets" / name


def test_long_running_services_have_healthchecks(config: dict[str, Any]) -> None:
    """Every service that stays up declares a healthcheck compose can wait on."""
    unchecked = [name for name, service in _long_running(config) if not _has_healthcheck(service)]
    assert unchecked == []


def test_dependencies_wait_for_health_or_completion(config: dict[str, Any]) -> None:
    """Each depends_on waits for a healthy long-running service or a one-shot that exited 0."""
    services = _services(config)
    for name, service in services.items():
        for dependency, condition in _conditions(service).items():
            if dependency in ONE_SHOT_SERVICES:
                expected = "service_completed_successfully"
            else:
                expected = "service_healthy"
                assert _has_healthcheck(services[dependency]), dependency
            assert condition == expected, f"{name} -> {dependency}: {condition}"


@pytest.mark.parametrize("service", ["api", "worker"])
def test_app_waits_for_migrations_and_a_healthy_database(
    config: dict[str, Any], service: str
) -> None:
    """api and worker start only after `rates db init` succeeded on a healthy PostgreSQL."""
    conditions = _conditions(_services(config)[service])
    assert conditions["migrate"] == "service_completed_successfully"
    assert conditions["postgres"] == "service_healthy"


def test_migrate_runs_db_init_once_after_the_database_is_healthy(config: dict[str, Any]) -> None:
    """The migrate one-shot runs `rates db init`, never restarts, and mounts dumps read-only."""
    migrate = _services(config)["migrate"]
    assert migrate["command"] == ["db", "init"]
    assert str(migrate.get("restart", "no")) == "no"
    assert _conditions(migrate) == {"postgres": "service_healthy"}
    assert any(target == "/dumps" and read_only for _, target, read_only in _mounts(migrate))


def test_dump_is_chosen_by_variables(tmp_path: Path) -> None:
    """RATES_DUMP reaches migrate only when set, and RATES_DUMP_DIR picks the mounted folder."""
    dumps = tmp_path / "dumps"
    run = _run_config(
        tmp_path,
        {**REQUIRED_VARIABLES, "RATES_DUMP": "/dumps/rates.sql", "RATES_DUMP_DIR": str(dumps)},
    )
    assert run.returncode == 0, run.stderr
    migrate = yaml.safe_load(run.stdout)["services"]["migrate"]
    assert migrate["environment"]["RATES_DUMP"] == "/dumps/rates.sql"
    assert (str(dumps), "/dumps", True) in _mounts(migrate)


def test_app_services_use_the_one_image_built_from_the_dockerfile(config: dict[str, Any]) -> None:
    """migrate, api and worker run rates:local built from deploy/docker/Dockerfile at the root."""
    for name in APP_SERVICES:
        service = _services(config)[name]
        assert service["image"] == "rates:local"
        assert Path(service["build"]["context"]) == REPO_ROOT
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert _services(config)["worker"]["command"] == ["worker"]
    assert _services(config)["api"]["command"][0] == "serve"


def test_environment_holds_no_literal_secrets(config: dict[str, Any]) -> None:
    """Secret-like settings are *_FILE paths to mounted secrets or come from required variables."""
    allowed_values = set(REQUIRED_VARIABLES.values())
    for name, service in _services(config).items():
        mounted = {
            secret if isinstance(secret, str) else secret.get("target", secret["source"])
            for secret in service.get("secrets") or []
        }
        for key, value in (service.get("environment") or {}).items():
            if not SECRET_LIKE.search(key) or value is None:
                continue
            if key.endswith("_FILE"):
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}={value}"
                assert Path(str(value)).name in mounted, f"{name}: {key} names an unmounted secret"
            else:
                assert value in allowed_values, f"{name}: {key} has a literal value"


def test_secret_values_stay_out_of_command_lines(config: dict[str, Any]) -> None:
    """No secret is interpolated into a command or entrypoint, where `ps` and logs would show it."""
    for name, service in _services(config).items():
        argv = " ".join(
            str(part) for key in ("command", "entrypoint") for part in (service.get(key) or [])
        )
        for secret in REQUIRED_VARIABLES.values():
            assert secret not in argv, name


def test_api_spools_uploads_on_a_volume(config: dict[str, Any]) -> None:
    """With a read-only root filesystem, the API still has a writable volume at its data dir."""
    api = _services(config)["api"]
    assert api["read_only"] is True
    spool = [m for m in _mounts(api) if m[1] == "/var/lib/rates"]
    assert spool == [("api-spool", "/var/lib/rates", False)]


def test_published_ports_listen_on_loopback_only(config: dict[str, Any]) -> None:
    """Every published port, the API's 8000 included, binds 127.0.0.1 and never all interfaces."""
    for name, service in _services(config).items():
        for host_ip, _ in _published_ports(service):
            assert host_ip == "127.0.0.1", name
    assert ("127.0.0.1", "8000") in _published_ports(_services(config)["api"])


def test_prometheus_mounts_its_config_and_the_rules(config: dict[str, Any]) -> None:
    """Prometheus reads deploy/monitoring/prometheus.yml and the rules folder, both read-only."""
    mounts = _mounts(_services(config)["prometheus"])
    assert (str(PROMETHEUS_CONFIG), "/etc/prometheus/prometheus.yml", True) in mounts
    assert (str(RULES_DIR), "/etc/prometheus/rules", True) in mounts


def test_prometheus_scrapes_the_api_and_the_worker() -> None:
    """The scrape config targets api:8000 and worker:9101 and loads the mounted rule files."""
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert {"api:8000", "worker:9101"} <= targets
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    """`promtool check config` accepts the file, loading the repository's rules as mounted."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not on PATH; install it with `apt-get install prometheus`")
    local = tmp_path / "prometheus.yml"
    local.write_text(
        PROMETHEUS_CONFIG.read_text().replace("/etc/prometheus/rules/", f"{RULES_DIR}/")
    )
    result = subprocess.run(
        [promtool, "check", "config", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
