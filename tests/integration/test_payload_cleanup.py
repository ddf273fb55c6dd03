"""No payload is left behind: spool files on errors, orphans by `rates ingest sweep`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.settings import Settings
from tests.ingest_helpers import AUTH, csv_rows, ingest_settings, seed_ports

CSV = {**AUTH, "Content-Type": "text/csv"}


def test_no_spool_file_survives_a_pool_timeout(database_url: str, tmp_path: Path) -> None:
    """An upload answered 503 because the batch pool had no connection leaves no spool file."""
    seed_ports(database_url)
    settings = ingest_settings(database_url, tmp_path / "store", db_pool_timeout_s=0.2)
    with TestClient(create_app(settings)) as client:
        pool = client.app.state.ingest_pool  # type: ignore[attr-defined]
        pool.wait()
        held = [pool.getconn() for _ in range(4)]
        try:
            response = client.post("/batches", content=csv_rows(3).encode(), headers=CSV)
        finally:
            for conn in held:
                pool.putconn(conn)
    assert response.status_code == 503
    assert list((settings.payload_dir() / "incoming").iterdir()) == []


def sweep(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "RATES_DATABASE_URL": settings.conninfo() or "",
        "RATES_STORAGE_DIR": str(settings.payload_dir()),
    }
    return subprocess.run(
        [sys.executable, "-m", "rates", "ingest", "sweep", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_sweep_deletes_old_unreferenced_payloads_only(database_url: str, tmp_path: Path) -> None:
    """Old orphans and spool leftovers go; a batch's payload and a young orphan stay."""
    seed_ports(database_url)
    settings = ingest_settings(database_url, tmp_path / "store")
    with TestClient(create_app(settings)) as client:
        assert client.post("/batches", content=csv_rows(3).encode(), headers=CSV).status_code == 202
    directory = settings.payload_dir()
    (stored,) = [p for p in directory.iterdir() if p.is_file()]
    old = time.time() - 3 * 3600
    orphan = directory / "0123-batch.csv"
    leftover = directory / "incoming" / "upload-left"
    young = directory / "4567-batch.csv"
    for path in (orphan, leftover, young):
        path.write_bytes(b"x")
    for path in (orphan, leftover, stored):
        os.utime(path, (old, old))

    listed = sweep(settings, "--grace-hours", "2", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert orphan.exists() and "found 2 unreferenced" in listed.stderr
    done = sweep(settings, "--grace-hours", "2")
    assert done.returncode == 0, done.stderr
    assert not orphan.exists() and not leftover.exists()
    assert stored.exists() and young.exists()
