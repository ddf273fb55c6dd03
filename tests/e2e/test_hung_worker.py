"""A real `rates worker` stopped mid-batch (SIGSTOP): the watchdog frees its batch."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from rates.settings import Settings
from tests.e2e.test_worker import (
    BIG_BATCH_ROWS,
    batch,
    wait_for_copied_rows,
    wait_for_status,
    wait_until,
    worker_counters,
    worker_gauge,
)
from tests.ingest_helpers import prices_of_batch, queue_file, total_prices, write_csv

STALE_AFTER_S = "5"


def counted_prices(database_url: str) -> int:
    """Prices the rates query counts: the sum over the daily route totals."""
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT coalesce(sum(prices), 0) FROM route_days").fetchone()[0]  # type: ignore[index]


def test_a_stopped_worker_loses_its_batch_to_another_and_then_stops_cleanly(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """SIGSTOP mid-COPY: a second worker ends the silent session and applies the batch once;
    after SIGCONT the first worker writes and counts nothing, and SIGTERM stops it with 0."""
    database_url = settings.conninfo() or ""
    batch_id = queue_file(settings, write_csv(tmp_path / "big.csv", BIG_BATCH_ROWS))
    hung = start_worker("hung", RATES_WORKER_STALE_AFTER_S=STALE_AFTER_S)
    wait_for_status(settings, batch_id, {"processing"})
    wait_for_copied_rows(settings, 100_000)  # well into the COPY
    hung.send_signal(signal.SIGSTOP)
    stopped_at = time.monotonic()

    rescuer = start_worker("rescuer", RATES_WORKER_STALE_AFTER_S=STALE_AFTER_S)
    done = wait_for_status(settings, batch_id, {"succeeded", "failed", "rejected"}, timeout_s=120)
    assert time.monotonic() - stopped_at < 120
    assert done["status"] == "succeeded"
    first, second = done["attempt_log"]
    assert first["outcome"] == "crashed" and "no heartbeat" in first["error"]
    assert first["worker"].endswith(f":{hung.pid}") and second["outcome"] == "succeeded"
    assert prices_of_batch(database_url, batch_id) == BIG_BATCH_ROWS
    assert total_prices(database_url) == counted_prices(database_url) == BIG_BATCH_ROWS
    assert worker_counters(rescuer) == {"succeeded": 1, "rows": BIG_BATCH_ROWS}
    assert worker_gauge(rescuer, "rates_ingest_stale_attempts_ended_total") == 1

    hung.send_signal(signal.SIGCONT)
    hung_log = tmp_path / "hung.log"
    wait_until(lambda: hung_log.read_text().count("worker_connected") == 2)  # it reconnected
    assert "attempt_taken_over" in hung_log.read_text()
    assert worker_counters(hung) == {"succeeded": 0, "rows": 0}
    hung.send_signal(signal.SIGTERM)
    assert hung.wait(timeout=30) == 0
    assert "Traceback" not in hung_log.read_text()
    after = batch(settings, batch_id)
    assert after["status"] == "succeeded" and after["attempt_log"] == done["attempt_log"]
    assert total_prices(database_url) == counted_prices(database_url) == BIG_BATCH_ROWS
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=30) == 0
