"""`rates up` from nothing: private PostgreSQL, demo data, API; clean stop; data reused."""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.conftest import rates_env, wait_for


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
    env = rates_env(RATES_DATA_DIR=str(data_dir), RATES_PORT=str(port), RATES_WORKERS="1")
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
        process = start_rates("up", env=env, log=log)
        wait_for(f"{base}/readyz", timeout_s=120)
        response = httpx.get(f"{base}/rates", params=query)
        assert response.status_code == 200
        answers.append(response.json())
        process.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
        assert process.wait(timeout=60) == 0  # type: ignore[attr-defined]
        assert not (data_dir / "postgres/pgdata/postmaster.pid").exists()
        output = log.read_text()
        assert ("generated demo data" in output) == (run == 0), output
        assert ("reusing it" in output) == (run == 1), output
    rates = answers[0]["rates"]
    assert len(rates) == 10 and sum(r["count"] for r in rates) > 0
    assert answers[0] == answers[1]
