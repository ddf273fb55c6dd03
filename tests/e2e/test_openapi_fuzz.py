"""Schemathesis against a running `rates serve`: every check, every phase (examples, coverage,
fuzzing, stateful), with the bearer token, and not one failure."""

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
    """`schemathesis run --checks all` over all phases, stateful included, finds nothing: the
    document declares every constraint it can (enums, ranges, formats, required parameters,
    bodies, the bearer scheme) and 405 answers list every method of the path."""
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
    # /rates has constraints across parameters that OpenAPI cannot state (date_from not after
    # date_to, at most RATES_MAX_RANGE_DAYS days): schema-valid pairs may rightly get a 400.
    (tmp_path / "schemathesis.toml").write_text(
        '[[operations]]\ninclude-path = "/rates"\n'
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]\n'
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
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--header",
            f"Authorization: Bearer {TOKEN}",
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
    assert result.returncode == 0, result.stdout[-20000:]
