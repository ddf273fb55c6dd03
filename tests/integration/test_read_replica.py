"""/rates on a real streaming replica of the suite's PostgreSQL (pg_basebackup, hot standby):
reads go to it, batches and their views stay on the writer, and /readyz reports the lag."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.devstack import LocalPostgres, LocalReplica
from rates.ingest.worker import Worker
from tests.ingest_helpers import AUTH, TOKEN, csv_rows, ingest_settings, seed_ports

RATES = "/rates?date_from=2021-02-01&date_to=2021-02-01&origin=world&destination=world"
# How long a batch committed and rolled up on the writer may take to show on the replica.
REPLICATION_BOUND_S = 5.0


@pytest.fixture(scope="module")
def replica(postgres: LocalPostgres) -> Iterator[LocalReplica]:
    """A hot standby of the suite's cluster, streaming from it for this module's tests."""
    root = Path(tempfile.mkdtemp(prefix="rates-test-replica-", dir="/tmp"))
    root.chmod(0o755)
    standby = LocalReplica(root, postgres)
    standby.ensure_initialized()
    standby.start()
    yield standby
    standby.stop()
    shutil.rmtree(root, ignore_errors=True)


def wait_for(condition: Any, timeout_s: float, what: str) -> float:
    """Polls ``condition`` every 50 ms; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def replica_has(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT count(*) FROM ports").fetchone() != (0,)
    except psycopg.OperationalError:
        return False  # the database itself has not been replayed yet


def test_rates_read_the_replica_while_batches_and_their_views_use_the_writer(
    database_url: str, replica: LocalReplica, tmp_path: Path
) -> None:
    """With replay paused, a batch is applied and shown as succeeded (writer) while /rates,
    served by the replica, does not count it yet and /readyz reports a lag; once replay goes
    on the batch counts in /rates within the bound and the lag drops to 0."""
    seed_ports(database_url)
    dbname = database_url.rsplit("/", 1)[1]
    replica_url = replica.url(dbname)
    wait_for(lambda: replica_has(replica_url), 30, "the test database on the replica")
    settings = ingest_settings(database_url, tmp_path / "store", read_database_url=replica_url)
    with (
        psycopg.connect(replica.conninfo("postgres"), autocommit=True) as standby,
        TestClient(create_app(settings)) as client,
    ):
        assert standby.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        assert client.get(RATES).json()["rates"][0]["count"] == 0
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            response = client.post(
                "/batches",
                content=csv_rows(10).encode(),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
            )
            assert response.status_code == 202
            assert Worker(settings, name="writer").run(once=True) == 1
            assert (
                client.get(response.headers["Location"], headers=AUTH).json()["status"]
                == "succeeded"
            )
            assert client.get(RATES).json()["rates"][0]["count"] == 0, "read from the writer"
            # Once the replica has received the batch's WAL (the suite's primary flushes it
            # asynchronously) without replaying it, it knows it lags.
            wait_for(lambda: client.get("/readyz").json()["replica_lag_s"] > 0, 5, "a lag")
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
        took_s = wait_for(
            lambda: client.get(RATES).json()["rates"][0]["count"] == 10,
            REPLICATION_BOUND_S,
            "the batch on the replica",
        )
        wait_for(lambda: client.get("/readyz").json()["replica_lag_s"] == 0, 5, "lag back to 0")
    print(f"batch visible on the replica {took_s:.3f} s after replay resumed")


def test_without_a_replica_the_writer_serves_reads(database_url: str, tmp_path: Path) -> None:
    """No read database configured: /rates reads the writer and /readyz reports no lag."""
    seed_ports(database_url)
    settings = ingest_settings(database_url, tmp_path / "store")
    assert settings.read_conninfo() is None
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json() == {"status": "ready", "replica_lag_s": None}
