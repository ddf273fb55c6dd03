"""`rates serve` as a real process: SIGHUP replaces workers without failing a request."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rates.db.demo import DemoSpec, generate_demo
from tests.e2e.conftest import children_of, rates_env, wait_for


class LoadGenerator:
    """Threads sending distinct rates queries back to back, counting every failure."""

    def __init__(self, base: str, threads: int = 4) -> None:
        self.base = base
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, seed: int) -> None:
        with httpx.Client(base_url=self.base, timeout=10.0) as client:
            n = seed
            while not self._stop.is_set():
                n += 1
                params = {
                    "date_from": f"2021-01-{1 + n % 20:02d}",
                    "date_to": "2021-01-28",
                    "origin": f"area_{1 + n % 3}",
                    "destination": f"area_{1 + (n + 1) % 3}",
                }
                try:
                    response = client.get("/rates", params=params)
                    outcome = None if response.status_code == 200 else str(response.status_code)
                except httpx.TransportError as exc:
                    outcome = repr(exc)
                with self._lock:
                    if outcome is None:
                        self.ok += 1
                    else:
                        self.failures.append(outcome)

    def __enter__(self) -> LoadGenerator:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_sighup_reloads_workers_without_a_failed_request(
    start_rates: Callable[..., object], database_url: str, port: int, tmp_path: Path
) -> None:
    """Three SIGHUPs under continuous load: all workers replaced each time, zero failures."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        generate_demo(conn, DemoSpec(ports=30, days=31))
    env = rates_env(
        RATES_DATABASE_URL=database_url,
        RATES_PORT=str(port),
        RATES_WORKERS="2",
        RATES_LOG_FORMAT="json",
    )
    server = start_rates("serve", env=env, log=tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/readyz")
    with LoadGenerator(base) as load:
        for _ in range(3):
            before = children_of(server.pid)  # type: ignore[attr-defined]
            server.send_signal(signal.SIGHUP)  # type: ignore[attr-defined]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = children_of(server.pid)  # type: ignore[attr-defined]
                if len(now) == 2 and not now & before:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("workers were not replaced after SIGHUP")
            served = load.ok
            deadline = time.monotonic() + 30
            while load.ok < served + 50:  # the new workers serve before the next reload
                assert time.monotonic() < deadline, "no requests served after the reload"
                time.sleep(0.05)
    assert load.failures == []
    assert load.ok > 150
    # Metrics aggregate over all worker processes, including the ones the reloads retired.
    exposition = httpx.get(f"{base}/metrics").text
    served = sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "http_requests_total"
        and sample.labels == {"method": "GET", "route": "/rates", "status": "200"}
    )
    assert served == load.ok
    sampled = {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}
    assert {"rates_db_pool_connections_in_use", "rates_db_pool_requests_waiting"} <= sampled
    traced = httpx.get(f"{base}/healthz", headers={"X-Request-ID": "trace-me-42"})
    assert traced.headers["x-request-id"] == "trace-me-42"
    server.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    assert server.wait(timeout=60) == 0  # type: ignore[attr-defined]
    lines = [
        json.loads(line)
        for line in (tmp_path / "serve.log").read_text().splitlines()
        if line.startswith("{")
    ]
    access = [line for line in lines if line.get("event") == "request"]
    assert len(access) >= load.ok
    assert all(len(line["request_id"]) >= 1 for line in access)
    assert any(line["request_id"] == "trace-me-42" for line in access)
    assert database_url.split("@")[0] not in (tmp_path / "serve.log").read_text()


def test_workers_leave_when_the_master_is_killed(
    start_rates: Callable[..., object], database_url: str, port: int, tmp_path: Path
) -> None:
    """SIGKILL to the gunicorn master stops no worker by itself; they notice within seconds
    and exit instead of serving on as orphans holding the port."""
    env = rates_env(RATES_DATABASE_URL=database_url, RATES_PORT=str(port), RATES_WORKERS="2")
    server = start_rates("serve", env=env, log=tmp_path / "serve.log")
    wait_for(f"http://127.0.0.1:{port}/readyz")
    workers = children_of(server.pid)  # type: ignore[attr-defined]
    assert len(workers) == 2
    server.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
    server.wait(timeout=10)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "orphaned workers still running"
        time.sleep(0.1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_each_worker_leads_a_session_of_its_own(
    start_rates: Callable[..., object], database_url: str, port: int, tmp_path: Path
) -> None:
    """Like each PostgreSQL backend, so the kernel's autogroup scheduler weighs each worker as
    much as one backend, not all workers together as one; workers started by a SIGHUP too."""
    env = rates_env(RATES_DATABASE_URL=database_url, RATES_PORT=str(port), RATES_WORKERS="2")
    server = start_rates("serve", env=env, log=tmp_path / "serve.log")
    wait_for(f"http://127.0.0.1:{port}/readyz")
    master = server.pid  # type: ignore[attr-defined]
    first = children_of(master)
    assert len(first) == 2
    assert all(os.getsid(pid) == pid for pid in first)
    server.send_signal(signal.SIGHUP)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    while len(replaced := children_of(master)) != 2 or set(replaced) & set(first):
        assert time.monotonic() < deadline, f"workers now: {replaced}"
        time.sleep(0.1)
    for pid in replaced:
        assert os.getsid(pid) == pid
    if Path("/proc/self/autogroup").exists():  # the scheduler's view of the same
        groups = {Path(f"/proc/{pid}/autogroup").read_text().split()[0] for pid in replaced}
        assert len(groups) == 2
        assert Path(f"/proc/{master}/autogroup").read_text().split()[0] not in groups


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this machine")
def test_the_files_written_per_request_live_in_memory(
    start_rates: Callable[..., object], database_url: str, port: int, tmp_path: Path
) -> None:
    """Each worker's metric files and heartbeat file are on /dev/shm, not on the disk whose
    journal PostgreSQL's flushes keep busy."""
    env = rates_env(RATES_DATABASE_URL=database_url, RATES_PORT=str(port), RATES_WORKERS="2")
    server = start_rates("serve", env=env, log=tmp_path / "serve.log")
    wait_for(f"http://127.0.0.1:{port}/readyz")
    assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200  # files written
    workers = children_of(server.pid)  # type: ignore[attr-defined]
    assert len(workers) == 2
    for pid in workers:
        mapped = Path(f"/proc/{pid}/maps").read_text()
        assert "/dev/shm/rates-metrics-" in mapped  # the metric files, memory-mapped
        assert "/tmp/rates-metrics-" not in mapped
        opened = [str(link.readlink()) for link in Path(f"/proc/{pid}/fd").iterdir()]
        assert any(target.startswith("/dev/shm/wgunicorn-") for target in opened), opened
        assert not any(target.startswith("/tmp/wgunicorn-") for target in opened)
    first = min(workers)
    mapped = Path(f"/proc/{first}/maps").read_text()
    directory = Path(re.search(r"(/dev/shm/rates-metrics-[^/]+)/", mapped).group(1))  # type: ignore[union-attr]
    # A worker that leaves (here: stopped, and replaced by the master) leaves the files be.
    os.kill(first, signal.SIGTERM)
    wait_for_workers(server.pid, 2, old=first)  # type: ignore[attr-defined]
    assert directory.is_dir()
    assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
    # The master's own directory goes with it.
    server.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    server.wait(timeout=30)  # type: ignore[attr-defined]
    assert not directory.exists()


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this machine")
def test_a_new_master_removes_what_masters_killed_outright_left_in_memory(
    start_rates: Callable[..., object], database_url: str, port: int, tmp_path: Path
) -> None:
    """A SIGKILLed master leaves its metrics directory on /dev/shm; the next `rates serve`
    removes it. The directory of a master still alive stays."""
    killed = subprocess.Popen(["sleep", "60"])
    killed.kill()
    killed.wait()
    left = Path(f"/dev/shm/rates-metrics-{killed.pid}-testleft")
    alive = Path(f"/dev/shm/rates-metrics-{os.getpid()}-testalive")
    for directory in (left, alive):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"\0" * 4096)
    try:
        env = rates_env(RATES_DATABASE_URL=database_url, RATES_PORT=str(port), RATES_WORKERS="1")
        start_rates("serve", env=env, log=tmp_path / "serve.log")
        wait_for(f"http://127.0.0.1:{port}/readyz")
        assert not left.exists()
        assert (alive / "counter_1.db").is_file()
    finally:
        shutil.rmtree(left, ignore_errors=True)
        shutil.rmtree(alive, ignore_errors=True)


def wait_for_workers(master: int, count: int, old: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        current = children_of(master)
        if len(current) == count and old not in current:
            return
        assert time.monotonic() < deadline, f"workers now: {current}"
        time.sleep(0.1)
