"""Ingest benchmark: 1M-row batches through the whole pipeline vs a raw ``psql \\copy``.

Starts a private PostgreSQL (stock settings), fills it with demo data (1,000 ports, a 4-level
region tree, about 3.3M prices), starts `rates serve` and a `rates worker` with their defaults,
and for each batch shape writes a CSV, submits it over HTTP and waits for `succeeded` (its
prices count in /rates). In the same run it copies the same file with `psql \\copy` into a
table shaped like the original `prices` (orig_code, dest_code, day, price) holding the same
prices as ours and indexed on (orig_code, dest_code, day), the index its queries need. Prints
each shape, both times, rows/s, the ratio (raw time / pipeline time) and the worker's peak RSS;
then a larger batch (default 10M rows) for peak RSS (a fresh worker each time, so VmHWM is that
batch's). Shapes:

* random lanes: 1M rows on 20,000 random port pairs, days spread over a year, so nearly every
  row is a new route-day (the hardest case for daily totals);
* dense feed: 1M rows on 725 existing routes (as many as the sample data has), 28 new days,
  about 50 prices per route-day.

    .venv/bin/python -m bench.ingest [--rows 1000000] [--big-rows 10000000]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import httpx2 as httpx
import psycopg

from bench.stack import machine, pg_client, private_cluster, rates_env, start, wait_ready
from rates.db.demo import DemoSpec, generate_demo
from rates.db.migrate import migrate
from rates.devstack import LocalPostgres, free_port

TOKEN = "bench-token"
# About 3.3M prices already in the database: 5,479 routes, 120 days, ~5 prices a route-day.
PRELOADED = DemoSpec(ports=1000, days=120, prices_per_route_day=5, routes=5479, seed=7)
NEW_DAYS_FROM = date(2022, 1, 1)  # after every preloaded day: batches bring new days
AUTH = {"Authorization": f"Bearer {TOKEN}"}  # the batch views need a token too


def write_rows(path: Path, rows: int, line: Callable[[int], str]) -> None:
    with path.open("w") as out:
        out.write("orig_code,dest_code,day,price\n")
        for start in range(0, rows, 50_000):
            out.write("".join(line(i) for i in range(start, min(rows, start + 50_000))))


def random_lanes(path: Path, ports: list[str], rows: int, seed: int) -> str:
    rng = random.Random(seed)
    routes: set[tuple[str, str]] = set()
    while len(routes) < 20_000:
        routes.add(tuple(rng.sample(ports, 2)))  # type: ignore[arg-type]
    lanes = sorted(routes)
    days = [(NEW_DAYS_FROM + timedelta(days=d)).isoformat() for d in range(365)]

    def line(_: int) -> str:
        origin, destination = rng.choice(lanes)
        return f"{origin},{destination},{rng.choice(days)},{rng.randint(100, 5000)}\n"

    write_rows(path, rows, line)
    return f"random lanes: {rows:,} rows, 20,000 random port pairs, 365 new days"


def dense_feed(path: Path, routes: list[tuple[str, str]], rows: int, seed: int) -> str:
    rng = random.Random(seed)
    lanes = rng.sample(routes, 725)
    days = [(NEW_DAYS_FROM + timedelta(days=d)).isoformat() for d in range(28)]

    def line(i: int) -> str:
        origin, destination = lanes[i % len(lanes)]
        return f"{origin},{destination},{days[i // len(lanes) % 28]},{rng.randint(100, 5000)}\n"

    write_rows(path, rows, line)
    per_route_day = rows / (len(lanes) * len(days))
    return (
        f"dense feed: {rows:,} rows, 725 existing routes, 28 new days,"
        f" ~{per_route_day:.0f} prices per route-day"
    )


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
        )
        self.workdir = workdir
        self.api = start([sys.executable, "-m", "rates", "serve"], self.env, workdir / "serve.log")
        self.worker: subprocess.Popen[bytes] | None = None
        wait_ready(f"{self.base}/readyz")

    def fresh_worker(self) -> subprocess.Popen[bytes]:
        self.stop_worker()
        self.worker = start(
            [sys.executable, "-m", "rates", "worker"], self.env, self.workdir / "worker.log"
        )
        return self.worker

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            self.worker.wait()

    def submit_and_wait(self, path: Path) -> tuple[float, dict]:
        """Seconds from the start of the upload until the batch ended, and the batch."""
        started = time.perf_counter()
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
            if batch["status"] in {"succeeded", "rejected", "failed"}:
                return time.perf_counter() - started, batch
            time.sleep(0.05)
        raise TimeoutError(f"{location} not finished after 30 minutes")

    def close(self) -> None:
        self.stop_worker()
        self.api.terminate()
        self.api.wait()


def original_table(cluster: LocalPostgres) -> None:
    """The original's prices table holding what ours holds, with its route index."""
    with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS original_prices")
        conn.execute(
            "CREATE TABLE original_prices AS SELECT orig_code, dest_code, day, price FROM prices"
        )
        conn.execute("CREATE INDEX ON original_prices (orig_code, dest_code, day)")
        conn.execute("VACUUM ANALYZE original_prices")


def raw_copy_seconds(cluster: LocalPostgres, path: Path) -> float:
    original_table(cluster)
    started = time.perf_counter()
    pg_client(
        cluster,
        "psql",
        "-q",
        "-d",
        "rates",
        "-c",
        f"\\copy original_prices FROM '{path}' WITH (FORMAT csv, HEADER true)",
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--big-rows",
        type=int,
        default=10_000_000,
        help="a larger random-lane batch for peak RSS (0 to skip)",
    )
    args = parser.parse_args()
    with private_cluster("rates-bench-ingest-") as (workdir, cluster):
        stack = None
        try:
            with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
                migrate(conn)
                generate_demo(conn, PRELOADED)
                ports = [row[0] for row in conn.execute("SELECT code FROM ports ORDER BY code")]
                routes = conn.execute("SELECT orig_code, dest_code FROM routes ORDER BY 1, 2")
                known_routes = [(o, d) for o, d in routes]
                held = conn.execute("SELECT count(*) FROM prices").fetchone()[0]  # type: ignore[index]
            print(f"{machine()}; stock PostgreSQL settings; the database holds {held:,} prices")
            stack = Stack(cluster, workdir)
            batch_file = workdir / "batch.csv"
            shapes = (
                lambda: random_lanes(batch_file, ports, args.rows, seed=1),
                lambda: dense_feed(batch_file, known_routes, args.rows, seed=2),
            )
            for write in shapes:
                shape = write()
                size_mb = batch_file.stat().st_size / 1e6
                worker = stack.fresh_worker()
                pipeline_s, batch = stack.submit_and_wait(batch_file)
                assert batch["status"] == "succeeded", batch
                rss = peak_rss_mb(worker.pid)
                raw_s = raw_copy_seconds(cluster, batch_file)
                print(f"\n{shape} ({size_mb:.0f} MB CSV)")
                print(f"  worker phases (s): {batch['timings_s']}")
                for label, seconds in (
                    ("pipeline, submit to succeeded (counted in /rates)", pipeline_s),
                    ("raw psql \\copy into the original's indexed prices", raw_s),
                ):
                    print(f"  {label:<52} {seconds:6.2f} s, {args.rows / seconds:>11,.0f} rows/s")
                print(
                    f"  ratio (raw / pipeline) {raw_s / pipeline_s:.2f};"
                    f" worker peak RSS {rss:.0f} MB"
                )
            if args.big_rows:
                shape = random_lanes(batch_file, ports, args.big_rows, seed=3)
                worker = stack.fresh_worker()
                big_s, big = stack.submit_and_wait(batch_file)
                assert big["status"] == "succeeded", big
                print(
                    f"\n{shape}: {big_s:.2f} s, {args.big_rows / big_s:,.0f} rows/s, "
                    f"worker peak RSS {peak_rss_mb(worker.pid):.0f} MB"
                )
            return 0
        finally:
            if stack is not None:
                stack.close()


if __name__ == "__main__":
    raise SystemExit(main())
