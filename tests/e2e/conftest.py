"""Helpers for tests that start the real ``rates`` command and signal it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from rates.devstack import free_port
from rates.settings import Settings
from tests.ingest_helpers import ingest_settings, seed_ports


def rates_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATES_")}
    env.update(variables)
    return env


def wait_for(url: str, *, timeout_s: float = 60.0, status: int = 200) -> httpx.Response:
    """Polls ``url`` until it answers ``status``; fails the test on timeout."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == status:
                return response
            last = response.status_code
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status} within {timeout_s}s (last: {last!r})")


def children_of(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


@pytest.fixture
def start_rates() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts ``python -m rates ARGS`` as a user would; kills leftovers after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "rates", *args],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed whole below
            )
        started.append(process)
        return process

    yield start
    for process in started:
        # Stopped as a user would first, so each cleans up after itself (rates serve removes
        # its metric files); then the group, not just the process. (rates serve's workers
        # lead sessions of their own, out of the group's reach: they leave within a second
        # once their master is gone.)
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Ingestion settings over this test's database, with a few known ports."""
    seed_ports(database_url)
    return ingest_settings(database_url, tmp_path / "store")


@pytest.fixture
def start_worker(
    start_rates: Callable[..., subprocess.Popen[bytes]], settings: Settings, tmp_path: Path
) -> Callable[..., subprocess.Popen[bytes]]:
    """Starts a real `rates worker` on the test's database, with its own metrics port."""

    def start(name: str, **env: str) -> subprocess.Popen[bytes]:
        metrics_port = int(env.pop("RATES_WORKER_METRICS_PORT", free_port()))
        variables = rates_env(
            RATES_DATABASE_URL=settings.conninfo() or "",
            RATES_STORAGE_DIR=str(settings.payload_dir()),
            RATES_WORKER_POLL_INTERVAL_S="0.2",
            RATES_LOG_FORMAT="json",
            RATES_WORKER_METRICS_PORT=str(metrics_port),
            **env,
        )
        process = start_rates("worker", env=variables, log=tmp_path / f"{name}.log")
        process.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"  # type: ignore[attr-defined]
        return process

    return start


# --- a real browser ---------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
# Headless, no sandbox (root in containers), and nothing that reaches the network by itself:
# the machine has none, and a browser waiting on it would stall the tests.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright; its absence is a failure, not a skip. One per
    module: Playwright's sync API runs an event loop in this thread until it is closed, which
    later tests calling asyncio.run() would trip over."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: run scripts/bootstrap (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def _tab(browser: Browser, width: int, height: int) -> Iterator[Page]:
    """A fresh tab (own storage); a script error or a refused resource fails the test."""
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield tab
    seen = list(problems)  # closing the tab cuts its requests still under way: not a fault
    context.close()
    assert not seen, seen


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A desktop-sized tab."""
    with _tab(browser, 1280, 900) as tab:
        yield tab


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Page]:
    """A tab as wide as a small phone's screen."""
    with _tab(browser, 375, 740) as tab:
        yield tab


@dataclass
class Stack:
    """``rates serve`` and ``rates worker`` on one database, as real processes."""

    url: str
    token: str
    database_url: str

    @property
    def auth(self) -> dict[str, str]:
        """The header the batch views need."""
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def stack(
    sample_database_url: str,
    start_rates: Callable[..., subprocess.Popen[bytes]],
    port: int,
    tmp_path: Path,
) -> Stack:
    """The API (one process) and a worker on the sample data, with an ingest token."""
    token = "browser-test-token"
    env = rates_env(
        RATES_DATABASE_URL=sample_database_url,
        RATES_PORT=str(port),
        RATES_WORKERS="1",
        RATES_INGEST_TOKENS=token,
        RATES_STORAGE_DIR=str(tmp_path / "batches"),
        RATES_WORKER_METRICS_PORT="0",
        RATES_ACCESS_LOG="false",
    )
    start_rates("serve", env=env, log=tmp_path / "serve.log")
    start_rates("worker", env=env, log=tmp_path / "worker.log")
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/readyz")
    return Stack(url=url, token=token, database_url=sample_database_url)
