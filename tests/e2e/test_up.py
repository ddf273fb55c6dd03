"""`rates up` from nothing: private PostgreSQL, demo data, API; clean stop; data reused."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import psycopg
import pytest

from rates.devstack import LocalPostgres
from tests.e2e.conftest import children_of, rates_env, wait_for


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Under /tmp, so the unprivileged PostgreSQL user can reach it when tests run as root."""
    root = Path(tempfile.mkdtemp(prefix="rates-up-", dir="/tmp"))
    root.chmod(0o755)
    yield root / "state"
    shutil.rmtree(root, ignore_errors=True)


def test_up_serves_demo_data_stops_cleanly_and_reuses_it(
    start_rates: Callable[..., object], data_dir: Path, port: int, tmp_path: Path
) -> None:
    """First run creates cluster and data; SIGTERM stops API and PostgreSQL; a rerun reuses both."""
    env = rates_env(RATES_DATA_DIR=str(data_dir), RATES_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    query = {
        "date_from": "2021-01-01",
        "date_to": "2021-01-10",
        "origin": "area_1",
        "destination": "area_2",
    }
    answers = []
    for run in range(2):
        log = tmp_path / f"up-{run}.log"
        process = start_rates("up", "--workers", "1", env=env, log=log)
        wait_for(f"{base}/readyz", timeout_s=120)
        assert len(_api_workers(process.pid)) == 1  # type: ignore[attr-defined]
        response = httpx.get(f"{base}/rates", params=query)
        assert response.status_code == 200
        answers.append(response.json())
        assert "Lane explorer" in httpx.get(f"{base}/").text
        if run == 0:
            submit_batches_through_the_cli(base, data_dir, tmp_path)
        code_a, code_b = _two_ports(data_dir)
        batch_day = {
            "date_from": "2020-06-01",
            "date_to": "2020-06-01",
            "origin": code_a,
            "destination": code_b,
        }
        assert httpx.get(f"{base}/rates", params=batch_day).json()["rates"][0]["price"] == 777
        process.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
        assert process.wait(timeout=60) == 0  # type: ignore[attr-defined]
        assert not (data_dir / "postgres/pgdata/postmaster.pid").exists()
        output = log.read_text()
        assert ("generated demo data" in output) == (run == 0), output
        assert ("reusing it" in output) == (run == 1), output
    rates = answers[0]["rates"]
    assert len(rates) == 10 and sum(r["count"] for r in rates) > 0
    assert answers[0] == answers[1]


def test_up_killed_outright_leaves_no_service_running(
    start_rates: Callable[..., object], data_dir: Path, port: int, tmp_path: Path
) -> None:
    """SIGKILL to `rates up` (no chance to stop anything): its API and worker still stop,
    told by the kernel that their parent died; only the private PostgreSQL stays, for reuse."""
    env = rates_env(RATES_DATA_DIR=str(data_dir), RATES_PORT=str(port))
    process = start_rates("up", "--workers", "1", env=env, log=tmp_path / "up.log")
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz", timeout_s=120)
        services = children_of(process.pid) | set(_api_workers(process.pid))  # type: ignore[attr-defined]
        assert len(services) == 3  # rates serve, its worker process, rates worker
        process.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while alive := [pid for pid in services if _running(pid)]:
            assert time.monotonic() < deadline, f"still running: {alive}"
            time.sleep(0.1)
    finally:
        LocalPostgres(data_dir / "postgres").stop()


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _api_workers(up_pid: int) -> list[int]:
    """The worker processes of the `rates serve` that `rates up` started."""
    rows = [
        line.split(maxsplit=2)
        for line in subprocess.run(
            ["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    ]
    masters = {pid for pid, ppid, args in rows if ppid == str(up_pid) and "serve" in args}
    return [int(pid) for pid, ppid, _ in rows if ppid in masters]


def submit_batches_through_the_cli(base: str, data_dir: Path, tmp_path: Path) -> None:
    """`rates ingest submit --wait` against the stack's worker: exit 0 applied, 1 rejected.
    No --url nor RATES_API_URL: the CLI finds the stack (on a port other than 8000) through
    the URL `rates up` recorded in the data directory."""
    assert (data_dir / "api-url").read_text().strip() == base
    good = tmp_path / "good.csv"
    # Three prices of 777 on a day outside the demo data: the day's average must be 777.
    code_a, code_b = _two_ports(data_dir)
    good.write_text("orig_code,dest_code,day,price\n" + f"{code_a},{code_b},2020-06-01,777\n" * 3)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"orig_code,dest_code,day,price\n{code_a},{code_b},2020-06-31,777\n")
    env = rates_env(RATES_DATA_DIR=str(data_dir))
    submit = [sys.executable, "-m", "rates", "ingest", "submit", "--wait"]
    ok = subprocess.run([*submit, str(good)], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "succeeded" in ok.stderr
    took = (
        r"took\s+load\s+\d+\.\d\d\s+s,\s+count\s+\d+\.\d\d\s+s,\s+commit\s+\d+\.\d\d\s+s,"
        r"\s+total\s+\d+\.\d\d\s+s"
    )
    assert re.search(took, ok.stderr), ok.stderr
    rejected = subprocess.run(
        [*submit, str(bad)], env=env, capture_output=True, text=True, timeout=60
    )
    assert rejected.returncode == 1
    assert "rejected" in rejected.stderr and "not a real date" in rejected.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "rates", "ingest", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listing.returncode == 0 and "rejected" in listing.stdout


def _two_ports(data_dir: Path) -> tuple[str, str]:
    """Two port codes of the demo data, read from the stack's own database."""
    cluster = LocalPostgres(data_dir / "postgres")
    with psycopg.connect(cluster.conninfo("rates")) as conn:
        rows = conn.execute("SELECT code FROM ports ORDER BY code LIMIT 2").fetchall()
    return rows[0][0], rows[1][0]
