"""Least-privilege login roles: the API reads and registers, the worker writes prices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict

from rates.api.app import create_app
from rates.ingest.worker import Worker
from tests.ingest_helpers import AUTH, TOKEN, csv_rows, ingest_settings, seed_ports


def as_role(database_url: str, role: str, password: str) -> str:
    """The same database URL with another user and password."""
    parts = conninfo_to_dict(database_url)
    return f"postgresql://{role}:{password}@{parts['host']}:{parts['port']}/{parts['dbname']}"


def test_grant_logins_gives_each_process_exactly_what_it_needs(
    database_url: str, tmp_path: Path
) -> None:
    """As rates_api the API serves and queues; as rates_worker the worker applies; no more."""
    seed_ports(database_url)
    env = {
        "PATH": "/usr/bin:/bin",
        "RATES_DATABASE_URL": database_url,
        "RATES_API_DB_PASSWORD": "api-pw-1",
        "RATES_WORKER_DB_PASSWORD": "worker-pw-1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "rates", "db", "grant-logins"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "api-pw-1" not in result.stdout + result.stderr
    api_url = as_role(database_url, "rates_api", "api-pw-1")
    worker_url = as_role(database_url, "rates_worker", "worker-pw-1")

    api_settings = ingest_settings(api_url, tmp_path / "store")
    with TestClient(create_app(api_settings)) as client:
        response = client.post(
            "/batches",
            content=csv_rows(4).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
        )
        assert response.status_code == 202
        Worker(ingest_settings(worker_url, tmp_path / "store")).run(once=True)
        assert (
            client.get(response.headers["Location"], headers=AUTH).json()["status"] == "succeeded"
        )

    with psycopg.connect(api_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO prices VALUES ('CNSGH', 'NLRTM', '2021-01-01', 1)")
    with psycopg.connect(worker_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM prices")
    with psycopg.connect(worker_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DROP TABLE prices")


def test_grant_logins_without_passwords_is_refused(database_url: str) -> None:
    """Without any password configured the command exits 2 and changes nothing."""
    result = subprocess.run(
        [sys.executable, "-m", "rates", "db", "grant-logins"],
        env={"PATH": "/usr/bin:/bin", "RATES_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "RATES_API_DB_PASSWORD" in result.stderr
