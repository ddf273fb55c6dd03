"""Ingest benchmark: a 1M-row batch through the whole pipeline vs a raw ``psql \\copy``.

Starts a private PostgreSQL (default durability), loads ports (the sample dump when present,
else demo data), starts `rates serve` and a `rates worker`, writes a CSV of N random prices,
submits it over HTTP and waits for `succeeded` (its prices count: rolled up into the daily
route totals); then, in the same run, copies the same file with `psql \\copy` into a table
shaped like `prices` (same indexes, no triggers, rows tagged with a batch id as the pipeline's
are). Prints both times, rows/s, the ratio (raw time / pipeline time) up to the batch's commit
(stored) and up to its roll-up (counted), and the worker's peak RSS; then the peak RSS again
for a larger batch (a fresh worker each time, so VmHWM is that batch's).

    .venv/bin/python -m bench.ingest [--rows 1000000] [--rss-rows 5000000]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import psycopg

from bench.stack import private_cluster, rates_env, wait_ready
from rates.db.demo import DemoSpec, generate_demo
from rates.db.dump import load_dump, open_dump
from rates.db.migrate import migrate
from rates.devstack import LocalPostgres, free_port

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "rates.sql"
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}  # the batch views need a token too


def write_batch(path: Path, ports: list[str], rows: int, seed: int) -> None:
    rng = random.Random(seed)
    routes = [tuple(rng.sample(ports, 2)) for _ in range(2000)]
    with path.open("w") as out:
        out.write("orig_code,dest_code,day,price\n")
        chunk = []
        for i in range(rows):
            origin, destination = routes[i % len(routes)]
            chunk.append(
                f"{origin},{destination},2022-{1 + i % 12:02d}-{1 + i % 28:02d},"
                f"{rng.randint(100, 5000)}\n"
            )
            if len(chunk) == 50_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


class Stack:
    def __init__(self, cluster: LocalPostgres, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = rates_env(
            cluster,
            RATES_PORT=str(self.port),
            RATES_INGEST_TOKENS=TOKEN,
            RATES_STORAGE_DIR=str(workdir / "store"),
            RATES_WORKER_POLL_INTERVAL_S="0.5",
            RATES_MAX_BATCH_BYTES=str(4 * 1024**3),
        )
        self.api = subprocess.Popen([sys.executable, "-m", "rates", "serve"], env=self.env)
        self.worker: subprocess.Popen[bytes] | None = None
        wait_ready(f"{self.base}/readyz")

    def fresh_worker(self) -> subprocess.Popen[bytes]:
        self.stop_worker()
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "rates", "worker"], env=self.env, stderr=subprocess.DEVNULL
        )
        return self.worker

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            self.worker.wait()

    def submit_and_wait(self, path: Path) -> tuple[float | None, float, dict]:
        """Seconds from the upload until the batch is stored (its commit's timing appears;
        None if it was never seen in between) and until it ended, and the batch."""
        started = time.perf_counter()
        stored_s = None
        with path.open("rb") as body:
            response = httpx.post(
                f"{self.base}/batches",
                content=iter(lambda: body.read(1 << 20), b""),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
                timeout=600,
            )
        response.raise_for_status()
        location = response.headers["Location"]
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            batch = httpx.get(f"{self.base}{location}", headers=AUTH).json()
            if stored_s is None and "commit" in (batch["timings_s"] or {}):
                stored_s = time.perf_counter() - started
            if batch["status"] in {"succeeded", "rejected", "failed"}:
                return stored_s, time.perf_counter() - started, batch
            time.sleep(0.05)
        raise TimeoutError(f"{location} not finished after 30 minutes")

    def close(self) -> None:
        self.stop_worker()
        self.api.terminate()
        self.api.wait()


def raw_copy_seconds(cluster: LocalPostgres, path: Path) -> float:
    with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS prices_raw")
        conn.execute("CREATE TABLE prices_raw (LIKE prices INCLUDING INDEXES)")
        # Tagged like the pipeline's rows, so the partial batch_id index gets them too.
        conn.execute("ALTER TABLE prices_raw ALTER batch_id SET DEFAULT 0")
    env = {**os.environ, "PGPASSWORD": cluster.password}
    started = time.perf_counter()
    subprocess.run(
        [
            "psql",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "rates",
            "-d",
            "rates",
            "-c",
            f"\\copy prices_raw (orig_code, dest_code, day, price) FROM '{path}' "
            "WITH (FORMAT csv, HEADER true)",
        ],
        env=env,
        check=True,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--rss-rows",
        type=int,
        default=5_000_000,
        help="a second, larger batch for peak RSS (0 to skip)",
    )
    args = parser.parse_args()
    with private_cluster("rates-bench-ingest-") as (workdir, cluster):
        stack = None
        try:
            with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
                migrate(conn)
                if SAMPLE.exists():
                    with open_dump(SAMPLE) as dump:
                        load_dump(conn, dump)
                else:
                    generate_demo(conn, DemoSpec(ports=150, days=31))
                ports = [row[0] for row in conn.execute("SELECT code FROM ports ORDER BY code")]
            batch_file = workdir / "batch.csv"
            write_batch(batch_file, ports, args.rows, seed=1)
            size_mb = batch_file.stat().st_size / 1e6
            stack = Stack(cluster, workdir)
            worker = stack.fresh_worker()
            stored_s, pipeline_s, batch = stack.submit_and_wait(batch_file)
            assert stored_s is not None, "the batch was never seen between commit and roll-up"
            assert batch["status"] == "succeeded", batch
            rss = peak_rss_mb(worker.pid)
            raw_s = raw_copy_seconds(cluster, batch_file)
            print(f"cores: {os.cpu_count()}; batch: {args.rows:,} rows, {size_mb:.0f} MB CSV")
            print(f"worker phases (s): {batch['timings_s']}")
            for label, seconds in (
                ("pipeline to stored (upload, queue, validate, COPY, commit)", stored_s),
                ("pipeline to counted (succeeded: stored, then rolled up)", pipeline_s),
                ("raw psql \\copy into a prices-shaped table", raw_s),
            ):
                print(f"{label:<60} {seconds:6.2f} s, {args.rows / seconds:>11,.0f} rows/s")
            print(
                f"ratio (raw / pipeline): stored {raw_s / stored_s:.2f}, counted"
                f" {raw_s / pipeline_s:.2f}; worker peak RSS {rss:.0f} MB"
            )
            if args.rss_rows:
                big_file = workdir / "big.csv"
                write_batch(big_file, ports, args.rss_rows, seed=2)
                batch_file.unlink()
                worker = stack.fresh_worker()
                _, big_s, big = stack.submit_and_wait(big_file)
                assert big["status"] == "succeeded", big
                print(
                    f"{args.rss_rows:,} rows: {big_s:.2f} s, {args.rss_rows / big_s:,.0f} rows/s, "
                    f"worker peak RSS {peak_rss_mb(worker.pid):.0f} MB"
                )
            return 0
        finally:
            if stack is not None:
                stack.close()


if __name__ == "__main__":
    raise SystemExit(main())
