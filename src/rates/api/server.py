"""``rates serve``: gunicorn managing uvicorn worker processes.

Gunicorn's master owns the listening socket, so SIGHUP starts fresh workers (loading new code
and settings read again, e.g. a rotated token in a ``*_FILE``) and retires the old ones
gracefully without a refused connection, and SIGTERM lets in-flight requests finish within
``graceful_timeout_s``.
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from pydantic import ValidationError

from rates.settings import Settings, SettingsFileError


class _GunicornServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, settings: Settings, reread: Callable[[], Settings]) -> None:
        self._settings = settings
        self._reread = reread
        self._configured = False
        super().__init__()

    def load_config(self) -> None:
        """Called at start and, in the master, on every SIGHUP: then the settings are read
        again, so the workers it starts next get them."""
        if self._configured:
            self._settings = self._settings_again()
        self._configured = True
        settings = self._settings
        options: dict[str, Any] = {
            "bind": f"{settings.host}:{settings.port}",
            "workers": settings.workers,
            "worker_class": "rates.api.worker.RatesUvicornWorker",
            "graceful_timeout": math.ceil(settings.graceful_timeout_s),
            "timeout": 60,
            "keepalive": 5,
            "proc_name": "rates-api",
            # The heartbeat file each worker touches from its event loop: see _memory_dir.
            "worker_tmp_dir": _memory_dir(),
            "loglevel": settings.log_level,
            "accesslog": None,
            "preload_app": False,
            # No control socket: it defaults to one path per user, shared by every server.
            "control_socket_disable": True,
            "post_fork": _own_session,
            "child_exit": _child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def _settings_again(self) -> Settings:
        """Fresh settings; on a bad value the running ones stay (gunicorn would exit)."""
        try:
            return self._reread()
        except ValidationError as exc:  # names only: a message could quote a secret
            names = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            problem = f"invalid value for {names}"
        except SettingsFileError as exc:
            problem = str(exc)
        print(f"rates serve: SIGHUP: keeping the previous settings ({problem})", file=sys.stderr)
        return self._settings

    def load(self) -> Any:
        # Imported in the worker, after the fork, so a SIGHUP reload picks up new code.
        from rates.api.app import create_app
        from rates.observability.logs import configure_logging

        configure_logging(self._settings)
        app = create_app(self._settings)
        _freeze_startup_heap()
        return app


def serve(settings: Settings, reread: Callable[[], Settings]) -> None:
    """Runs until SIGTERM or SIGINT; returns after a graceful shutdown. ``reread`` builds the
    settings again on SIGHUP.

    Metrics of all worker processes are shared through PROMETHEUS_MULTIPROC_DIR, which must be
    set before prometheus_client is first imported, that is, here, before any worker forks."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    master = os.getpid()
    own = None  # a directory of our own, in memory, removed when the master ends
    if directory:
        shutil.rmtree(directory, ignore_errors=True)  # stale files from an earlier run
        Path(directory).mkdir(parents=True)
    else:
        parent = _memory_dir() or tempfile.gettempdir()
        _remove_dead_masters_directories(Path(parent))
        own = tempfile.mkdtemp(prefix=f"{_OWN_PREFIX}{master}-", dir=parent)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own
    try:
        _GunicornServer(settings, reread).run()
    finally:
        # Workers are forked inside run(): none may remove files the others still write.
        if own is not None and os.getpid() == master:
            shutil.rmtree(own, ignore_errors=True)


_OWN_PREFIX = "rates-metrics-"  # then the master's pid: rates-metrics-<pid>-<random>


def _remove_dead_masters_directories(parent: Path) -> None:
    """A master killed outright (SIGKILL, the OOM killer) cannot remove its metrics directory,
    and on /dev/shm that holds memory until reboot: each new master removes those of this user
    whose master is gone. A live pid, even a reused one, keeps its directory."""
    for directory in parent.glob(f"{_OWN_PREFIX}*-*"):
        pid = directory.name.removeprefix(_OWN_PREFIX).split("-", 1)[0]
        try:
            if not pid.isdigit() or directory.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except (PermissionError, FileNotFoundError):
            continue  # alive as another user's process; or removed by another new master


def _memory_dir() -> str | None:
    """/dev/shm where the machine has it (Linux, containers), else the default temporary
    directory. Every request writes to the metric files through memory maps, and each worker
    touches its heartbeat file from its event loop: on a disk filesystem those writes can wait
    behind the filesystem's journal and writeback while PostgreSQL flushes, stalling every
    request of that process (gunicorn's documentation warns of the heartbeat)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _freeze_startup_heap() -> None:
    """Takes the objects made at start-up (FastAPI, pydantic, the routes) out of the collector's
    reach and makes young collections rarer: collections walking that heap showed as latency
    spikes (bench.api p99 14-412 ms before, 6-8 ms after, at the same throughput)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _own_session(server: Any, worker: Any) -> None:
    """Each worker leads a session of its own, as each PostgreSQL backend does (postmaster
    children call setsid). Linux's autogroup scheduler (on by default in most distribution
    kernels) shares the CPU between sessions first: with the workers in the master's one
    session, all of them together weighed as much as one busy backend, and while a batch
    applied, requests waited 0.2-3 s for the CPU (the README's Scale section has it
    measured). The master still stops them by pid, and they leave if it dies."""
    os.setsid()


def _child_exit(server: Any, worker: Any) -> None:
    """Lets a dead worker's live gauges drop out of the aggregate."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]  # untyped upstream
