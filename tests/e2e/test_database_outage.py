"""PostgreSQL stopped under load: fast 503s, no 500 and no hang; recovery within 5 s."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import psycopg
import pytest

from rates.db.demo import DemoSpec, generate_demo
from rates.db.migrate import migrate
from rates.devstack import LocalPostgres, free_port
from tests.e2e.conftest import rates_env, wait_for
from tests.ingest_helpers import AUTH, TOKEN


@pytest.fixture
def own_cluster() -> Iterator[tuple[LocalPostgres, str]]:
    """A cluster of this test's own (the suite's shared one must never be stopped), and a
    valid one-row batch for its demo ports."""
    root = Path(tempfile.mkdtemp(prefix="rates-outage-", dir="/tmp"))
    root.chmod(0o755)
    cluster = LocalPostgres(root, server_settings={"fsync": "off"})
    cluster.ensure_initialized()
    cluster.start()
    cluster.create_database("rates")
    with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
        migrate(conn)
        generate_demo(conn, DemoSpec(ports=20, days=10))
        codes = [row[0] for row in conn.execute("SELECT code FROM ports ORDER BY code LIMIT 2")]
    batch = f"orig_code,dest_code,day,price\n{codes[0]},{codes[1]},2021-01-05,900\n"
    yield cluster, batch
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_api_and_worker_ride_out_a_database_outage(
    own_cluster: tuple[LocalPostgres, str],
    start_rates: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """During the outage every answer is a quick 503; after it the API and worker carry on."""
    cluster, batch = own_cluster
    port = free_port()
    env = rates_env(
        RATES_DATABASE_URL=cluster.url("rates"),
        RATES_PORT=str(port),
        RATES_WORKERS="2",
        RATES_INGEST_TOKENS=TOKEN,
        RATES_STORAGE_DIR=str(tmp_path / "store"),
        RATES_WORKER_POLL_INTERVAL_S="0.5",
        RATES_WORKER_METRICS_PORT="0",
    )
    start_rates("serve", env=env, log=tmp_path / "serve.log")
    start_rates("worker", env=env, log=tmp_path / "worker.log")
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/readyz")
    query = {
        "date_from": "2021-01-01",
        "date_to": "2021-01-10",
        "origin": "area_1",
        "destination": "area_2",
    }

    statuses: Counter[int | str] = Counter()  # status codes, or the name of a client error
    after_recovery: Counter[int | str] = Counter()
    slowest = [0.0]
    recovered = threading.Event()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=base, timeout=15) as client:
            while not stop.is_set():
                started = time.monotonic()
                outcome: int | str
                try:
                    outcome = client.get("/rates", params=query).status_code
                except httpx.TransportError as exc:  # a hang or a refused connection
                    outcome = type(exc).__name__
                slowest[0] = max(slowest[0], time.monotonic() - started)
                statuses[outcome] += 1
                if recovered.is_set():
                    after_recovery[outcome] += 1

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    cluster.stop()
    outage_started = time.monotonic()
    wait_for(f"{base}/readyz", status=503, timeout_s=5)
    for _ in range(3):  # once the pool has dropped its broken connections too
        probe = httpx.get(f"{base}/readyz", timeout=5)
        assert probe.status_code == 503
        assert probe.elapsed.total_seconds() < 1.0  # a probe is not held for the pool timeout
    time.sleep(1)
    cluster.start()
    back = time.monotonic()
    wait_for(f"{base}/readyz", timeout_s=5)
    recovered_in = time.monotonic() - back
    recovered.set()
    deadline = time.monotonic() + 5
    while after_recovery[200] < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()

    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0 and statuses[200] > 0
    assert after_recovery[200] >= 20, after_recovery  # /rates itself works again
    assert slowest[0] < 5, f"a request hung for {slowest[0]:.1f}s"
    assert recovered_in < 5
    assert time.monotonic() - outage_started < 30

    response = httpx.post(
        f"{base}/batches",
        content=batch.encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
    )
    assert response.status_code == 202
    deadline = time.monotonic() + 20
    while (
        status := httpx.get(f"{base}{response.headers['Location']}", headers=AUTH).json()["status"]
    ) != ("succeeded"):
        assert status in {"queued", "processing"}, status
        assert time.monotonic() < deadline, "the worker did not carry on after the outage"
        time.sleep(0.2)
