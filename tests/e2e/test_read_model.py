"""The read model under real processes: readers polling /rates see a batch all at once, and a
worker killed while it adds a batch's totals leaves nothing counted twice or lost."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

from rates.db.connection import connect
from rates.settings import Settings
from tests.e2e.conftest import rates_env, wait_for
from tests.e2e.test_worker import batch, wait_for_status
from tests.ingest_helpers import prices_of_batch, queue_file, write_csv
from tests.integration.test_ingest_api import drift

ROWS = 600_000
# write_csv spreads its rows over 28 days of March 2021 between ports of the one large region.
MARCH = {"date_from": "2021-03-01", "date_to": "2021-03-28"}
QUERIES = (
    {**MARCH, "origin": "world", "destination": "world"},  # region-pair totals
    {**MARCH, "origin": "CNSGH", "destination": "world"},  # route totals
)


@pytest.fixture
def api(
    start_rates: Callable[..., subprocess.Popen[bytes]],
    settings: Settings,
    port: int,
    tmp_path: Path,
) -> str:
    env = rates_env(RATES_DATABASE_URL=settings.conninfo() or "", RATES_PORT=str(port))
    start_rates("serve", env=env, log=tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/readyz")
    return base


def counts(base: str) -> tuple[int, ...]:
    """Prices counted over March, per query."""
    return tuple(
        sum(day["count"] for day in httpx.get(f"{base}/rates", params=query).json()["rates"])
        for query in QUERIES
    )


def wait_for_statement(settings: Settings, fragment: str, timeout_s: float = 60) -> None:
    """Until some backend runs a statement containing ``fragment``."""
    deadline = time.monotonic() + timeout_s
    with connect(settings, autocommit=True) as conn:
        while time.monotonic() < deadline:
            running = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                [f"%{fragment}%"],
            ).fetchone()[0]  # type: ignore[index]
            if running:
                return
            time.sleep(0.01)
    raise AssertionError(f"no backend ran {fragment!r}")


def test_sigkill_while_counting_then_a_reader_sees_the_batch_all_at_once(
    settings: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    api: str,
    tmp_path: Path,
) -> None:
    """SIGKILL while the worker sums a batch into its totals: nothing counts; a second worker
    applies it once, and /rates, polled all along, shows either none of it or all of it."""
    before = counts(api)
    assert before == (0, 0)
    batch_id = queue_file(settings, write_csv(tmp_path / "big.csv", ROWS))
    victim = start_worker("victim")
    wait_for_statement(settings, "CREATE TEMPORARY TABLE batch_totals")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    wait_for_status(settings, batch_id, {"queued"}, timeout_s=10)
    assert prices_of_batch(settings.conninfo() or "", batch_id) == 0
    assert counts(api) == before and drift(settings) == 0

    seen: set[tuple[int, ...]] = set()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.add(counts(api))

    reader = threading.Thread(target=poll)
    reader.start()
    rescuer = start_worker("rescuer")
    done = wait_for_status(settings, batch_id, {"succeeded", "failed", "rejected"})
    # write_csv: every row's destination is in world; origins alternate CNSGH / CNGGZ.
    after = (ROWS, ROWS // 2)
    deadline = time.monotonic() + 10
    while after not in seen and time.monotonic() < deadline:
        time.sleep(0.05)  # until the reader has answered once after the commit
    stop.set()
    reader.join()
    assert done["status"] == "succeeded"
    assert [a["outcome"] for a in done["attempt_log"]] == ["crashed", "succeeded"]
    assert counts(api) == after
    # Each answer is one statement: all of the batch or none of it, query by query.
    for number in range(len(QUERIES)):
        observed = {answer[number] for answer in seen}
        assert observed == {before[number], after[number]}, f"a reader saw part: {observed}"
    assert drift(settings) == 0
    assert batch(settings, batch_id)["rows"]["inserted"] == ROWS
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=30) == 0
