"""Real `rates worker` processes: parallel claims, SIGKILL mid-batch, SIGTERM mid-batch."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from rates.db.connection import connect
from rates.ingest.batches import get_batch
from rates.settings import Settings
from tests.ingest_helpers import (
    prices_of_batch,
    queue_file,
    total_prices,
    write_csv,
)

BIG_BATCH_ROWS = 1_000_000


def worker_counters(worker: subprocess.Popen[bytes]) -> dict[str, float]:
    """Succeeded batches and applied rows from a worker's own /metrics endpoint."""
    text = httpx.get(worker.metrics_url).text  # type: ignore[attr-defined]
    counters = {"succeeded": 0.0, "rows": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rates_ingest_batches_total" and sample.labels == {
                "outcome": "succeeded"
            }:
                counters["succeeded"] = sample.value
            if sample.name == "rates_ingest_rows_total":
                counters["rows"] = sample.value
    return counters


def worker_gauge(worker: subprocess.Popen[bytes], name: str) -> float | None:
    """A gauge from a worker's /metrics endpoint; None while it does not answer yet."""
    try:
        text = httpx.get(worker.metrics_url).text  # type: ignore[attr-defined]
    except httpx.TransportError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


def wait_until(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def batch(settings: Settings, batch_id: int) -> dict:
    with connect(settings, autocommit=True) as conn:
        return get_batch(conn, batch_id)


def wait_for_copied_rows(settings: Settings, rows: int, timeout_s: float = 60) -> None:
    """Until a COPY into prices has streamed at least ``rows`` rows (pg_stat_progress_copy)."""
    deadline = time.monotonic() + timeout_s
    with connect(settings, autocommit=True) as conn:
        while time.monotonic() < deadline:
            copied = conn.execute(
                "SELECT max(tuples_processed) FROM pg_stat_progress_copy"
                " WHERE relid = 'prices'::regclass"
            ).fetchone()[0]  # type: ignore[index]
            if copied is not None and copied >= rows:
                return
            time.sleep(0.02)
    raise AssertionError(f"no COPY into prices reached {rows} rows")


def wait_for_status(
    settings: Settings, batch_id: int, statuses: set[str], timeout_s: float = 120
) -> dict:
    """The batch once in one of ``statuses``; an ended batch once every attempt's outcome is
    recorded too (the worker writes it on its own connection just after the batch commits)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = batch(settings, batch_id)
        if current["status"] in statuses and not (
            current["status"] in {"succeeded", "failed", "rejected"}
            and any(attempt["outcome"] is None for attempt in current.get("attempt_log", []))
        ):
            return current
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} never reached {statuses}: {current['status']}")


def test_two_workers_apply_ten_batches_each_exactly_once(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Ten batches, two worker processes claiming side by side: every batch succeeds once
    with all of its rows, and both workers take part."""
    rows = 20_000
    files = [write_csv(tmp_path / f"b{i}.csv", rows) for i in range(10)]
    workers = [start_worker("w1"), start_worker("w2")]
    for worker in workers:  # both connected and listening before the batches arrive
        wait_until(lambda w=worker: worker_gauge(w, "rates_db_up") == 1)
    ids = [queue_file(settings, path) for path in files]
    for batch_id in ids:
        done = wait_for_status(settings, batch_id, {"succeeded", "rejected", "failed"})
        assert done["status"] == "succeeded"
        assert done["attempts"] == 1
        assert prices_of_batch(settings.conninfo() or "", batch_id) == rows
    assert total_prices(settings.conninfo() or "") == 10 * rows
    totals = [worker_counters(worker) for worker in workers]
    assert sum(t["succeeded"] for t in totals) == 10
    assert all(t["succeeded"] >= 1 for t in totals), totals
    assert sum(t["rows"] for t in totals) == 10 * rows
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0


def test_sigkill_mid_batch_leaves_nothing_and_another_worker_applies_it_once(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """SIGKILL while a big batch loads: no row visible, then a new worker applies it fully."""
    batch_id = queue_file(settings, write_csv(tmp_path / "big.csv", BIG_BATCH_ROWS))
    victim = start_worker("victim")
    wait_for_status(settings, batch_id, {"processing"})
    wait_for_copied_rows(settings, 100_000)  # well into the COPY
    assert batch(settings, batch_id)["status"] == "processing"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    released = wait_for_status(settings, batch_id, {"queued"}, timeout_s=10)
    assert released["attempts"] == 1
    assert prices_of_batch(settings.conninfo() or "", batch_id) == 0

    seen: set[int] = set()
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(settings.conninfo() or "", autocommit=True) as conn:
            while not stop.is_set():
                seen.add(
                    conn.execute(
                        "SELECT count(*) FROM prices WHERE batch_id = %s", [batch_id]
                    ).fetchone()[0]
                )  # type: ignore[index]

    reader = threading.Thread(target=poll)
    reader.start()
    rescuer = start_worker("rescuer")
    done = wait_for_status(settings, batch_id, {"succeeded", "failed", "rejected"})
    deadline = time.monotonic() + 10
    while BIG_BATCH_ROWS not in seen and time.monotonic() < deadline:
        time.sleep(0.01)  # let the reader observe the committed batch
    stop.set()
    reader.join()
    assert done["status"] == "succeeded"
    assert [a["outcome"] for a in done["attempt_log"]] == ["crashed", "succeeded"]
    assert prices_of_batch(settings.conninfo() or "", batch_id) == BIG_BATCH_ROWS
    assert seen <= {0, BIG_BATCH_ROWS}, "a reader saw part of a batch"
    assert BIG_BATCH_ROWS in seen
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=30) == 0


def test_sigterm_mid_batch_finishes_it_within_the_grace_period(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """SIGTERM while loading: the worker completes the batch, exactly once, then exits 0."""
    batch_id = queue_file(settings, write_csv(tmp_path / "big.csv", BIG_BATCH_ROWS // 2))
    worker = start_worker("graceful")
    wait_for_status(settings, batch_id, {"processing"})
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=120) == 0
    done = batch(settings, batch_id)
    assert done["status"] == "succeeded"
    assert prices_of_batch(settings.conninfo() or "", batch_id) == BIG_BATCH_ROWS // 2


def test_sigterm_past_the_grace_period_rolls_back_for_another_worker(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """With no grace left the batch rolls back (not counted as a failure) and is retried."""
    batch_id = queue_file(settings, write_csv(tmp_path / "big.csv", BIG_BATCH_ROWS))
    worker = start_worker("impatient", RATES_WORKER_GRACE_PERIOD_S="0")
    wait_for_status(settings, batch_id, {"processing"})
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    interrupted = batch(settings, batch_id)
    assert interrupted["status"] == "queued"
    assert [a["outcome"] for a in interrupted["attempt_log"]] == ["interrupted"]
    assert prices_of_batch(settings.conninfo() or "", batch_id) == 0
    retry = start_worker("retry")
    done = wait_for_status(settings, batch_id, {"succeeded", "failed", "rejected"})
    assert done["status"] == "succeeded"
    assert prices_of_batch(settings.conninfo() or "", batch_id) == BIG_BATCH_ROWS
    retry.send_signal(signal.SIGTERM)
    assert retry.wait(timeout=30) == 0


def test_a_second_worker_with_the_metrics_port_taken_runs_on_without_metrics(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """With its metrics port in use, a worker logs one line and still applies batches."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        worker = start_worker("second", RATES_WORKER_METRICS_PORT=port)
        batch_id = queue_file(settings, write_csv(tmp_path / "small.csv", 10))
        assert wait_for_status(settings, batch_id, {"succeeded", "failed"})["status"] == "succeeded"
    assert worker.poll() is None
    log = (tmp_path / "second.log").read_text()
    assert log.count("worker_metrics_disabled") == 1 and "Traceback" not in log
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
