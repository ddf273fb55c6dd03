"""Scaled-down copies of the local stack: ``rates env up|down|list``.

Each copy is a ``rates up`` started in the background with a data directory of its own
(``<data dir>/envs/<name>``): its own PostgreSQL cluster, port, batch storage, API and
worker, and a small data set (demo data, a dump, or a sampled fraction of a dump).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

from rates.devstack import DevstackError, free_port

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
_STATE_FILE = "env.json"


@dataclass(frozen=True)
class EnvInfo:
    name: str
    directory: Path
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def envs_root(data_dir: Path) -> Path:
    return data_dir.absolute() / "envs"


def _directory(data_dir: Path, name: str) -> Path:
    if not _NAME.match(name):
        raise DevstackError(
            f"environment name {name!r}: use 1-31 lowercase letters, digits and dashes"
        )
    return envs_root(data_dir) / name


def _load(directory: Path) -> EnvInfo | None:
    try:
        state = json.loads((directory / _STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    return EnvInfo(directory.name, directory, int(state["port"]), int(state["pid"]))


def list_envs(data_dir: Path) -> list[EnvInfo]:
    root = envs_root(data_dir)
    if not root.exists():
        return []
    return [env for d in sorted(root.iterdir()) if (env := _load(d)) is not None]


def env_up(
    data_dir: Path,
    name: str,
    *,
    port: int | None,
    dump: Path | None,
    sample: float | None,
    ready_timeout_s: float = 180.0,
) -> EnvInfo:
    """Starts the copy in the background and waits until its API is ready."""
    directory = _directory(data_dir, name)
    existing = _load(directory)
    if existing is not None and existing.running:
        raise DevstackError(f"environment {name} already runs at {existing.url}")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # the cluster's unprivileged user must reach pgdata under root
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATES_")}
    env.update(
        RATES_DATA_DIR=str(directory),
        RATES_PORT=str(port),
        RATES_WORKERS="1",
        RATES_DB_POOL_MAX_SIZE="4",
    )
    args = [sys.executable, "-m", "rates", "up"]
    if dump is not None:
        args += ["--dump", str(dump.absolute())]
    if sample is not None:
        args += ["--sample", str(sample)]
    with (directory / "stack.log").open("ab") as log:
        process = subprocess.Popen(
            args,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=directory,
        )
    info = EnvInfo(name, directory, port, process.pid)
    (directory / _STATE_FILE).write_text(json.dumps({"port": port, "pid": process.pid}))
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevstackError(
                f"environment {name} exited during start-up; see {directory / 'stack.log'}"
            )
        try:
            if httpx.get(f"{info.url}/readyz", timeout=1.0).status_code == 200:
                return info
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise DevstackError(f"environment {name} not ready after {ready_timeout_s:.0f}s")


def env_down(data_dir: Path, name: str, *, timeout_s: float = 90.0) -> None:
    """Stops the copy (API, worker, PostgreSQL) and removes its data."""
    directory = _directory(data_dir, name)
    info = _load(directory)
    if info is None:
        raise DevstackError(f"no environment {name}")
    if info.running:
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while info.running and time.monotonic() < deadline:
            time.sleep(0.1)
        if info.running:
            raise DevstackError(f"environment {name} (pid {info.pid}) did not stop")
    shutil.rmtree(directory)
