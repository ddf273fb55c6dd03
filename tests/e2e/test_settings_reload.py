"""`rates serve` re-reads its settings on SIGHUP: a rotated token counts without a restart."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx

from tests.e2e.conftest import rates_env, wait_for
from tests.ingest_helpers import csv_rows, seed_ports


def submit(base: str, token: str) -> int:
    response = httpx.post(
        f"{base}/batches",
        content=csv_rows(2).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        timeout=10,
    )
    return response.status_code


def test_a_rotated_token_applies_after_sighup(
    start_rates: Callable[..., subprocess.Popen[bytes]],
    database_url: str,
    port: int,
    tmp_path: Path,
) -> None:
    """Rotate the token in RATES_INGEST_TOKENS_FILE, then HUP the master: the old token gets
    401 and the new one 202, from the same server process; a broken settings file at the
    next HUP keeps the server on its last good settings."""
    seed_ports(database_url)
    tokens = tmp_path / "tokens"
    tokens.write_text("old-token-0123456789\n")
    env = rates_env(
        RATES_DATABASE_URL=database_url,
        RATES_PORT=str(port),
        RATES_WORKERS="1",
        RATES_INGEST_TOKENS_FILE=str(tokens),
        RATES_STORAGE_DIR=str(tmp_path / "store"),
        RATES_DB_POOL_MAX_SIZE_FILE=str(tmp_path / "pool-size"),
    )
    (tmp_path / "pool-size").write_text("4\n")
    server = start_rates("serve", env=env, log=tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/readyz")
    assert submit(base, "old-token-0123456789") == 202

    tokens.write_text("new-token-9876543210\n")
    assert submit(base, "new-token-9876543210") == 401  # read once, until told
    server.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while submit(base, "new-token-9876543210") != 202:
        assert time.monotonic() < deadline, "the new token never counted"
        time.sleep(0.2)
    assert submit(base, "old-token-0123456789") == 401

    (tmp_path / "pool-size").write_text("not a number\n")
    server.send_signal(signal.SIGHUP)
    log = tmp_path / "serve.log"
    deadline = time.monotonic() + 30
    while "keeping the previous settings" not in log.read_text():
        assert time.monotonic() < deadline, "the bad settings file went unnoticed"
        time.sleep(0.2)
    assert server.poll() is None
    assert submit(base, "new-token-9876543210") == 202
    assert "not a number" not in log.read_text()
