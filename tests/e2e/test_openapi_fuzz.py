"""Schemathesis against a running `rates serve`: generated requests for every documented
operation never get a 5xx, and every answer matches the documented status codes and schemas."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from rates.db.demo import DemoSpec, generate_demo
from tests.e2e.conftest import rates_env, wait_for
from tests.ingest_helpers import TOKEN


def test_generated_requests_conform_to_the_openapi_document(
    start_rates: Callable[..., subprocess.Popen[bytes]],
    database_url: str,
    port: int,
    tmp_path: Path,
) -> None:
    """`schemathesis run` with its conformance checks passes against the live server."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        generate_demo(conn, DemoSpec(ports=20, days=20))
    env = rates_env(
        RATES_DATABASE_URL=database_url,
        RATES_PORT=str(port),
        RATES_WORKERS="2",
        RATES_INGEST_TOKENS=TOKEN,
        RATES_STORAGE_DIR=str(tmp_path / "store"),
        RATES_ACCESS_LOG="false",
    )
    start_rates("serve", env=env, log=tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/readyz")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{base}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,"
            "content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--generation-deterministic",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:]
