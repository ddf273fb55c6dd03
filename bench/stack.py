"""What every benchmark sets up: a scratch PostgreSQL, the environment for `rates` commands,
and waiting for the API to be ready."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

from rates.devstack import LocalPostgres, find_postgres_bin_dir

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    """The machine's shape each benchmark prints first: its cores, and whether the kernel
    shares the CPU between sessions first (autogroup), which decides how much the API's
    workers weigh against PostgreSQL's backends."""
    setting = Path("/proc/sys/kernel/sched_autogroup_enabled")
    if not setting.exists():
        autogroup = "absent"
    else:
        autogroup = "on" if setting.read_text().strip() == "1" else "off"
    return f"cores: {os.cpu_count()}, autogroup scheduler: {autogroup}"


def workers_setting(workers: int | None) -> dict[str, str]:
    """RATES_WORKERS when a benchmark overrides rates serve's default (one per core)."""
    return {} if workers is None else {"RATES_WORKERS": str(workers)}


@contextmanager
def private_cluster(prefix: str, **server_settings: str) -> Iterator[tuple[Path, LocalPostgres]]:
    """A scratch folder and a fresh PostgreSQL in it with an empty `rates` database; both are
    removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    workdir.chmod(0o755)  # the cluster runs as an unprivileged user when we are root
    cluster = LocalPostgres(workdir / "pg", server_settings=server_settings or None)
    try:
        cluster.ensure_initialized()
        cluster.start()
        cluster.create_database("rates")
        yield workdir, cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def pg_client(cluster: LocalPostgres, binary: str, *args: str, options: str | None = None) -> str:
    """Runs a PostgreSQL client (psql, pgbench, pg_dump) against the cluster as its owner, with
    session ``options`` (PGOPTIONS) if given; its standard output."""
    env = {**os.environ, "PGPASSWORD": cluster.password}
    if options is not None:
        env["PGOPTIONS"] = options
    command = [str(find_postgres_bin_dir() / binary), "-h", "127.0.0.1", "-p", str(cluster.port)]
    return subprocess.run(
        [*command, "-U", "rates", *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def rates_env(cluster: LocalPostgres, **settings: str) -> dict[str, str]:
    """The environment for `rates` commands against the cluster: no RATES_ variable of the
    caller's, so the product's defaults (logging and the access log included), plus
    ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATES_")}
    env.update(RATES_DATABASE_URL=cluster.url("rates"), **settings)
    return env


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Starts a process from the repository root (so ``bench.*`` modules import) with its
    output appended to ``log``, where a deployment would collect it, instead of on the
    benchmark's own output. In a session of its own, as `rates up` starts each of its
    processes (and as a container holds one): with the kernel's autogroup scheduler a process
    sharing the benchmark's session would share its CPU with wrk's."""
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(url: str) -> None:
    """Polls a readiness URL until it answers 200."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} never became ready")


@contextmanager
def serving(
    command: list[str], env: dict[str, str], port: int, ready_path: str, log: Path
) -> Iterator[str]:
    """Starts an HTTP service that ``command`` binds to ``port`` (see ``start``); waits until
    ``ready_path`` answers 200, yields its base URL, and stops it with SIGTERM."""
    server = start(command, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}{ready_path}")
        yield base
    finally:
        server.terminate()
        server.wait()
