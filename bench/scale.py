"""Scale benchmark: rates latency at 1M and 10M demo prices, and under concurrent ingestion.

Stock PostgreSQL settings and the product's defaults. For each size it generates demo data
(1,000 ports, a 4-level region tree, 365 days, ~5 prices per route and day: 10M prices are
5,479 routes), vacuums the new prices (at rest, as autovacuum leaves them), starts `rates
serve`, and runs wrk (8 connections, rotating over a few hundred distinct queries) for port
pairs, port-region, random region pairs (mostly small), and the heavy pairs: top-level x
top-level regions (each about a third of all ports) and second-level x second-level, over 31
and 365 days, printing p50/p99, requests/s and failed requests. At the largest size it then
uploads ten 100k-row random-lane batches and runs heavy-pair queries from the first upload
until the worker has applied the last, and compares that run's p99 with an idle run of 3x the
cell duration (about as long), twice: with the machine flat out (no pause between requests) and
at about a third of that (8 ms pauses). Each time it also measures the load beside one process
spinning on a core, as a floor: what any background work costs the API on this machine. Last,
the flat-out load split by phase: ten more uploads with no worker running, a worker applying
them, and the worker merging their route-days. The API's answer cache is off, so every request
runs its query (bench.api measures repeats with the cache on).

    .venv/bin/python -m bench.scale [--sizes 1000000 10000000] [--duration 10]
"""

from __future__ import annotations

import argparse
import functools
import random
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import httpx2 as httpx
import psycopg

from bench.api import run_wrk
from bench.stack import machine, private_cluster, rates_env, serving, start, workers_setting
from rates.db.demo import DemoSpec, generate_demo
from rates.db.migrate import migrate
from rates.devstack import LocalPostgres, free_port

FIRST_DAY = date(2021, 1, 1)
DAYS = 365
PORTS = 1000
MEAN_PRICES_PER_ROUTE_DAY = 5.0
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}  # the batch views need a token too
BATCHES = 10
BATCH_ROWS = 100_000
# Per connection between requests: about a third of what the machine serves flat out.
PAUSE_MS = 8


KINDS = ("port-port", "port-region", "region-region", "top x top", "2nd x 2nd")
LEVEL = """
WITH RECURSIVE tree AS (
    SELECT slug, 1 AS depth FROM regions WHERE parent_slug IS NULL
    UNION ALL
    SELECT r.slug, tree.depth + 1 FROM regions r JOIN tree ON r.parent_slug = tree.slug
) SELECT slug FROM tree WHERE depth = %s ORDER BY slug
"""


def queries(
    conn: psycopg.Connection, kind: str, window: int, count: int, rng: random.Random
) -> list[dict]:
    ports = [r[0] for r in conn.execute("SELECT code FROM ports")]
    routes = conn.execute(
        "SELECT DISTINCT orig_code, dest_code FROM prices TABLESAMPLE SYSTEM (1)"
    ).fetchall()
    regions = [r[0] for r in conn.execute("SELECT slug FROM regions ORDER BY slug")]
    tops = [r[0] for r in conn.execute(LEVEL, [1])]
    seconds = [r[0] for r in conn.execute(LEVEL, [2])]
    out = []
    for _ in range(count):
        if kind == "port-port":
            origin, destination = rng.choice(routes)
        elif kind == "port-region":
            origin, destination = rng.choice(ports), rng.choice(regions)
        elif kind == "top x top":
            origin, destination = rng.choice(tops), rng.choice(tops)
        elif kind == "2nd x 2nd":
            origin, destination = rng.choice(seconds), rng.choice(seconds)
        else:
            origin, destination = rng.sample(regions, 2)
        start = FIRST_DAY + timedelta(days=rng.randrange(DAYS - window + 1))
        end = start + timedelta(days=window - 1)
        out.append(
            {
                "origin": origin,
                "destination": destination,
                "date_from": start.isoformat(),
                "date_to": end.isoformat(),
            }
        )
    return out


def write_batch(path: Path, ports: list[str], rows: int, seed: int) -> None:
    """Random lanes: random port pairs on random days of the year, so nearly every row is a
    new route-day (the hardest case for the daily totals)."""
    rng = random.Random(seed)
    days = [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(DAYS)]
    with path.open("w") as out:
        out.write("orig_code,dest_code,day,price\n")
        lines = []
        for _ in range(rows):
            origin, destination = rng.sample(ports, 2)
            lines.append(f"{origin},{destination},{rng.choice(days)},{rng.randint(100, 5000)}\n")
        out.write("".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--workers", type=int, default=None, help="API processes (default: rates serve's own)"
    )
    args = parser.parse_args()
    rng = random.Random(7)
    results: dict[tuple[int, str, int], dict] = {}
    # Stock settings (128 MB shared_buffers): what a user's own server gives.
    with private_cluster("rates-bench-scale-") as (workdir, cluster):
        port = free_port()
        env = rates_env(
            cluster,
            RATES_PORT=str(port),
            RATES_INGEST_TOKENS=TOKEN,
            RATES_STORAGE_DIR=str(workdir / "store"),
            RATES_WORKER_METRICS_PORT="0",
            # Each cell rotates over a few hundred queries, which the answer cache would
            # answer from memory after their first pass: this measures the queries.
            RATES_ANSWER_CACHE_MB="0",
            **workers_setting(args.workers),
        )
        print(
            f"{machine()}, connections: {args.connections}, "
            f"duration: {args.duration}s per cell, answer cache off (every request runs its "
            "query; bench.api measures the cache)"
        )
        for size in args.sizes:
            routes = round(size / (DAYS * MEAN_PRICES_PER_ROUTE_DAY))
            started = time.perf_counter()
            with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
                migrate(conn)
                demo = generate_demo(
                    conn,
                    DemoSpec(
                        ports=PORTS,
                        days=DAYS,
                        routes=routes,
                        prices_per_route_day=MEAN_PRICES_PER_ROUTE_DAY,
                        depth=4,
                        first_day=FIRST_DAY,
                    ),
                    replace=True,
                )
                # At rest: settled as autovacuum leaves freshly generated prices (otherwise it
                # works through 10M new rows, on one of the two cores, during the first cells).
                settle_started = time.perf_counter()
                conn.execute("VACUUM (ANALYZE) prices")
                settled_s = time.perf_counter() - settle_started
                workloads = {
                    (kind, window): queries(conn, kind, window, 300, rng)
                    for kind in KINDS
                    for window in (31, 365)
                }
            print(
                f"\n{demo.prices:,} prices ({demo.ports} ports, {demo.regions} regions, "
                f"{demo.routes:,} routes) generated in {time.perf_counter() - started:.0f}s,"
                f" then VACUUM (ANALYZE) prices took {settled_s:.0f}s"
            )
            serve = [sys.executable, "-m", "rates", "serve"]
            with serving(serve, env, port, "/readyz", workdir / "serve.log") as base:
                for (kind, window), batch in workloads.items():
                    r = run_wrk(base, batch, args.duration, args.connections, workdir)
                    results[(size, kind, window)] = r
                    print(
                        f"{kind:>13} {window:>3}d: p50 {r['p50_ms']:7.1f} ms"
                        f"  p99 {r['p99_ms']:7.1f} ms  {r['rps']:7.0f} req/s  failed {r['failed']}"
                    )
                if size == args.sizes[-1]:
                    heavy = workloads[("top x top", 31)] + workloads[("2nd x 2nd", 31)]
                    _heavy_pairs_during_batches(base, cluster, env, heavy, args, workdir)
        if len(args.sizes) > 1:
            small, large = args.sizes[0], args.sizes[-1]
            print(
                f"\ngrowth of p50 from {small:,} to {large:,} prices ({large / small:.0f}x data):"
            )
            for kind in KINDS:
                for window in (31, 365):
                    a, b = results[(small, kind, window)], results[(large, kind, window)]
                    print(f"{kind:>13} {window:>3}d: {b['p50_ms'] / a['p50_ms']:.1f}x")
        return 0


def _heavy_pairs_during_batches(
    base: str,
    cluster: LocalPostgres,
    env: dict[str, str],
    heavy: list[dict],
    args: argparse.Namespace,
    workdir: Path,
) -> None:
    """Heavy-pair p99 idle, beside a busy loop, and while ten batches apply, flat out and
    paced; prints each against idle."""
    worker = start([sys.executable, "-m", "rates", "worker"], env, workdir / "worker.log")
    try:
        with psycopg.connect(cluster.conninfo("rates")) as conn:
            ports = [row[0] for row in conn.execute("SELECT code FROM ports")]
        for round_number, pause_ms in enumerate((0, PAUSE_MS)):
            load = functools.partial(
                run_wrk,
                base,
                heavy,
                connections=args.connections,
                workdir=workdir,
                pause_ms=pause_ms,
            )
            with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
                # Settled tables (as autovacuum leaves them), not the last round's.
                conn.execute("VACUUM (ANALYZE) prices, route_days, region_days, routes")
            # As long as the batches take, roughly, so both p99s are over as many
            # requests: the highest of fewer requests is a lower p99.
            baseline_s = 3 * args.duration
            idle = load(duration=baseline_s)
            spinning = _during_a_busy_loop(functools.partial(load, duration=baseline_s))
            files = _batch_files(workdir, ports, f"batch{round_number}", round_number * 100)
            busy, timings = _while_batches_apply(base, files, load)
            pace = f"{pause_ms} ms pause per request" if pause_ms else "no pause"
            print(f"\ntop x top and 2nd x 2nd 31d, {args.connections} connections, {pace}:")
            print(_compared(f"idle ({baseline_s} s)", idle, idle))
            print(_compared(f"one busy-loop process ({baseline_s} s)", spinning, idle))
            print(
                _compared(f"{BATCHES} x {BATCH_ROWS:,}-row batches", busy, idle)
                + f" (from the first upload until all have succeeded: "
                f"{busy['seconds']:.0f} s)"
            )
            print(
                f"  per batch under this load: load {_mean(timings, 'load'):.1f} s,"
                f" count {_mean(timings, 'count'):.1f} s"
            )
        worker.terminate()
        worker.wait()
        _phases_of_ingestion(base, env, ports, heavy, args, workdir)
    finally:
        worker.terminate()
        worker.wait()


def _phases_of_ingestion(
    base: str,
    env: dict[str, str],
    ports: list[str],
    heavy: list[dict],
    args: argparse.Namespace,
    workdir: Path,
) -> None:
    """The flat-out load split by what ingestion is doing: ten uploads with no worker
    running, then a worker applying them (no uploads), then the worker merging their
    route-days (30 s); each p99 against an idle run just before."""
    load = functools.partial(run_wrk, base, heavy, connections=args.connections, workdir=workdir)
    files = _batch_files(workdir, ports, "batch-phases", 200)
    idle = load(duration=3 * args.duration)
    with ThreadPoolExecutor(max_workers=1) as pool:
        uploading = pool.submit(lambda: [_submit(base, path) for path in files])
        uploads = load(duration=0, until=uploading.done)
        locations = uploading.result()
        worker = start([sys.executable, "-m", "rates", "worker"], env, workdir / "worker.log")
        try:
            waiting = pool.submit(_wait_all, base, locations)
            applying = load(duration=0, until=waiting.done)
            waiting.result()
            merging = load(duration=3 * args.duration)
        finally:
            worker.terminate()
            worker.wait()
    print(f"\ntop x top and 2nd x 2nd 31d, {args.connections} connections, no pause, by phase:")
    print(_compared(f"idle ({3 * args.duration} s)", idle, idle))
    print(_compared(f"{BATCHES} uploads, no worker", uploads, idle))
    print(_compared("applying them, no uploads", applying, idle))
    print(_compared(f"merging them ({3 * args.duration} s)", merging, idle))


def _batch_files(workdir: Path, ports: list[str], name: str, first_seed: int) -> list[Path]:
    """BATCHES random-lane CSV files of BATCH_ROWS rows each, seeded from ``first_seed``."""
    files = [workdir / f"{name}-{i}.csv" for i in range(BATCHES)]
    for i, path in enumerate(files):
        write_batch(path, ports, BATCH_ROWS, seed=first_seed + i)
    return files


def _mean(timings: list[dict], phase: str) -> float:
    return sum(t[phase] for t in timings) / len(timings)


def _compared(label: str, run: dict, idle: dict) -> str:
    return (
        f"  {label:<32} p99 {run['p99_ms']:6.1f} ms  {run['rps']:5.0f} req/s"
        f"  {run['p99_ms'] / idle['p99_ms']:.1f}x idle  failed {run['failed']}"
    )


def _during_a_busy_loop(load: Callable[[], dict]) -> dict:
    """The same load while one process spins on a core: the least any background work costs
    the API on this machine, for comparison with the batches. In a session of its own, as the
    worker and each PostgreSQL backend are: in the benchmark's it would share wrk's CPU share
    under the autogroup scheduler and cost the API less than any real process could."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        return load()
    finally:
        spinner.kill()
        spinner.wait()


def _while_batches_apply(
    base: str, files: list[Path], load: Callable[..., dict]
) -> tuple[dict, list[dict]]:
    """One run of the load from the first upload until the worker has applied the last
    batch; its figures (with ``seconds``) and each batch's phase timings."""

    def submit_and_wait() -> list[dict]:
        return _wait_all(base, [_submit(base, path) for path in files])

    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.perf_counter()
        waiting = pool.submit(submit_and_wait)
        busy = load(duration=0, until=waiting.done)
        busy["seconds"] = time.perf_counter() - started
        timings = waiting.result()  # raises what stopped the wait
    return busy, timings


def _submit(base: str, path: Path) -> str:
    response = httpx.post(
        f"{base}/batches",
        content=path.read_bytes(),
        timeout=120,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
    )
    response.raise_for_status()
    return str(response.headers["Location"])


def _wait_all(base: str, locations: list[str]) -> list[dict]:
    """Until every batch has succeeded (counts in /rates); their ``timings_s``."""
    deadline = time.monotonic() + 900
    timings = []
    for location in locations:
        while True:
            batch = httpx.get(f"{base}{location}", headers=AUTH).json()
            if batch["status"] == "succeeded":
                timings.append(batch["timings_s"])
                break
            if batch["status"] in {"rejected", "failed", "reverted"}:
                raise RuntimeError(f"{location} ended {batch['status']}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{location} still {batch['status']} after 15 minutes")
            time.sleep(0.2)
    return timings


if __name__ == "__main__":
    raise SystemExit(main())
