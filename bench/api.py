"""API benchmark: wrk over many distinct /rates queries vs the same SQL through pgbench.

Starts a private PostgreSQL (stock settings), loads the sample dump (or a dump given with
--dump), starts `rates serve` with its defaults, then for each workload:
  (a) 20,000 distinct port-pair queries with varied date ranges (wrk's threads start at
      different points of the list, so no two hit the same query at once),
  (b) region-to-region queries for January (e.g. china_main -> northern_europe),
runs wrk for --duration seconds at --connections, and then pgbench -M prepared at the same
concurrency over the same statements (pgbench takes at most 128 scripts, so it draws from a
128-query subset). Prints requests/s, p50/p99, failed requests, tps and the ratio. It does so
twice: with the answer cache off (every request runs its statement), then with the default
cache, printing the share of requests it answered (repeats whose data version still holds).

Then the same port-pair queries go to the floor of any Python request path here
(bench/floor.py: a bare ASGI app with one fixed answer behind the same server), to the ceiling
of any that reads PostgreSQL through psycopg (bench/ceiling.py: a bare ASGI app running the
same statement through the API's pool), and to the service this project replaces (bench/original.py:
Flask under gunicorn's defaults, reading `prices` loaded by psql from the same plain-SQL
dump), first as shipped (no index on routes), then with an index on (orig_code, dest_code,
day), and `rates serve`'s figures are printed as multiples of its.

    .venv/bin/python -m bench.api [--dump ../shared/data/rates.sql] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx2 as httpx
import psycopg

from bench.stack import (
    REPO,
    machine,
    pg_client,
    private_cluster,
    rates_env,
    serving,
    workers_setting,
)
from rates.db.dump import load_dump, open_dump
from rates.db.migrate import migrate
from rates.devstack import LocalPostgres, free_port
from rates.query import (
    DAILY_RATES_SQL,
    LARGE_REGIONS_SQL,
    MIN_PRICES_PER_DAY,
    LargeRegions,
    RatesQuery,
    shortcut_for,
)
from rates.settings import default_workers

DEFAULT_DUMP = REPO.parent / "shared" / "data" / "rates.sql"
PGBENCH_MAX_SCRIPTS = 128
# The uncached path (every request runs its statement) first, then the product's default.
CACHE_MODES: dict[str, dict[str, str]] = {
    "answer cache off": {"RATES_ANSWER_CACHE_MB": "0"},
    "answer cache on (default)": {},
}
LUA = """
local paths = {%s}
local counter = 0
setup = function(thread) thread:set("offset", math.random(#paths)) end
init = function() counter = tonumber(wrk.thread:get("offset")) or 0 end
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


def load_settled(conn: psycopg.Connection, dump: Path) -> None:
    """Migrates the empty database and loads the dump as `rates db load` does, then vacuums the
    prices: settled, as autovacuum leaves a loaded table (and as the original's is below), so
    autovacuum does not work through a big dump's prices during the first runs."""
    migrate(conn)
    with open_dump(dump) as opened:
        load_dump(conn, opened)
    conn.execute("VACUUM ANALYZE prices")


def port_pair_queries(conn: psycopg.Connection, count: int, rng: random.Random) -> list[dict]:
    routes = conn.execute(
        "SELECT DISTINCT orig_code, dest_code FROM prices ORDER BY 1, 2"
    ).fetchall()
    first, last = conn.execute("SELECT min(day), max(day) FROM prices").fetchone()  # type: ignore[misc]
    span = (last - first).days
    queries = []
    for _ in range(count):
        origin, destination = rng.choice(routes)
        start = first + timedelta(days=rng.randrange(span + 1))
        end = min(last, start + timedelta(days=rng.randrange(1, 31)))
        queries.append(_query(origin, destination, start, end))
    return queries


def region_queries(conn: psycopg.Connection, count: int, rng: random.Random) -> list[dict]:
    """Pairs of regions with prices between them, over the whole month or a window of it."""
    slugs = [row[0] for row in conn.execute("SELECT slug FROM regions ORDER BY slug")]
    tops = [row[0] for row in conn.execute("SELECT slug FROM regions WHERE parent_slug IS NULL")]
    first, last = conn.execute("SELECT min(day), max(day) FROM prices").fetchone()  # type: ignore[misc]
    queries = [_query(tops[0], tops[-1], first, last)]
    if len(tops) > 1:
        queries.append(_query(tops[-1], tops[0], first, last))
    while len(queries) < count:
        origin, destination = rng.sample(slugs, 2)
        start = first + timedelta(days=rng.randrange(10))
        queries.append(_query(origin, destination, start, last))
    return queries


def cache_lookups(base: str) -> dict[str, float]:
    """The API's answer-cache lookups so far, by outcome, from its /metrics."""
    text = httpx.get(f"{base}/metrics").text
    found = re.findall(r'^rates_answer_cache_lookups_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    return {"hit": 0.0, "stale": 0.0, "miss": 0.0} | {k: float(v) for k, v in found}


def _query(origin: str, destination: str, start: date, end: date) -> dict:
    """The original's parameter names, so the same URLs go to both services."""
    return {
        "orig_code": origin,
        "dest_code": destination,
        "date_from": start.isoformat(),
        "date_to": end.isoformat(),
    }


def run_wrk(
    base: str,
    queries: list[dict],
    duration: int,
    connections: int,
    workdir: Path,
    *,
    pause_ms: int = 0,
    until: Callable[[], bool] | None = None,
) -> dict:
    """Closed-loop load: each connection sends its next request as soon as the last is answered,
    or ``pause_ms`` later (a lighter, steadier load than the machine's maximum). With
    ``until``, the load runs until that returns true (checked every 0.1 s) instead of for
    ``duration`` seconds."""
    paths = ",".join(f'"/rates?{urlencode(q)}"' for q in queries)
    script = workdir / "rotate.lua"
    script.write_text(
        LUA % paths + (f"delay = function() return {pause_ms} end\n" if pause_ms else "")
    )
    threads = min(connections, os.cpu_count() or 1)
    seconds = duration if until is None else 24 * 3600
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    with subprocess.Popen(
        [*command, "-s", str(script), base], stdout=subprocess.PIPE, text=True
    ) as load:
        if until is not None:
            while not until():
                time.sleep(0.1)
            load.send_signal(signal.SIGINT)  # wrk stops and prints its figures
        output, _ = load.communicate()
    if load.returncode != 0:
        raise RuntimeError(f"wrk exited {load.returncode}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "failed": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, socket.groups())) if socket else 0),
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def statements_run_for(
    conn: psycopg.Connection, large: LargeRegions, query: dict, params: dict
) -> list[str]:
    """What the API runs for this query: its shortcut statement, if it has one, then the
    general statement unless the shortcut answered."""
    shortcut = shortcut_for(
        RatesQuery(
            date_from=date.fromisoformat(query["date_from"]),
            date_to=date.fromisoformat(query["date_to"]),
            origin=query["orig_code"],
            destination=query["dest_code"],
        ),
        large,
    )
    if shortcut is None:
        return [DAILY_RATES_SQL]
    answers = conn.execute(shortcut, params).fetchone()[0]  # type: ignore[index]
    return [shortcut] if answers else [shortcut, DAILY_RATES_SQL]


def run_pgbench(
    cluster: LocalPostgres,
    dbname: str,
    queries: list[dict],
    duration: int,
    connections: int,
    workdir: Path,
) -> float:
    """Queries per second of the statements the API runs for these queries, literal values in
    place of the parameters."""
    scripts = []
    with psycopg.connect(cluster.conninfo(dbname)) as conn:
        cursor = psycopg.ClientCursor(conn)
        # As an API process knows them once it has answered.
        large = LargeRegions(slugs=frozenset(row[0] for row in conn.execute(LARGE_REGIONS_SQL)))
        for number, query in enumerate(queries[:PGBENCH_MAX_SCRIPTS]):
            params = {
                "origin": query["orig_code"],
                "destination": query["dest_code"],
                "date_from": query["date_from"],
                "date_to": query["date_to"],
                "min_prices": MIN_PRICES_PER_DAY,
            }
            path = workdir / f"q{number}.sql"
            with path.open("w") as script:
                for sql in statements_run_for(conn, large, query, params):
                    statement = cursor.mogrify(sql, params)
                    lines = (line.split("--")[0] for line in statement.splitlines())
                    script.write(" ".join(" ".join(lines).split()) + ";\n")
            scripts += ["-f", str(path)]
    # pgbench runs with the session settings of the API (no JIT, no parallel workers).
    output = pg_client(
        cluster,
        "pgbench",
        "-n",
        "-M",
        "prepared",
        "-c",
        str(connections),
        "-j",
        str(min(connections, os.cpu_count() or 1)),
        "-T",
        str(duration),
        *scripts,
        dbname,
        options="-c jit=off -c max_parallel_workers_per_gather=0",
    )
    return float(re.search(r"tps = ([\d.]+)", output).group(1))  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dump", type=Path, default=DEFAULT_DUMP)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=None, help="API processes (default: rates serve's own)"
    )
    parser.add_argument("--port-pairs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    rng = random.Random(args.seed)
    with private_cluster("rates-bench-") as (workdir, cluster):
        with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
            load_settled(conn, args.dump)
            workloads = {
                "port pairs": port_pair_queries(conn, args.port_pairs, rng),
                "regions": region_queries(conn, 60, rng),
            }
        load_original(cluster, args.dump)
        print(
            f"{machine()}, API workers: {args.workers or 'default'}, "
            f"connections: {args.connections}, duration: {args.duration}s"
        )
        pgbench_tps: dict[str, float] = {}
        answers: dict[str, dict[str, dict]] = {}
        for cache, cache_setting in CACHE_MODES.items():
            port = free_port()
            env = rates_env(
                cluster, RATES_PORT=str(port), **workers_setting(args.workers), **cache_setting
            )
            serve = [sys.executable, "-m", "rates", "serve"]
            with serving(serve, env, port, "/readyz", workdir / "serve.log") as base:
                answers[cache] = {}
                for name, queries in workloads.items():
                    before = cache_lookups(base)
                    api = run_wrk(base, queries, args.duration, args.connections, workdir)
                    hits = cache_lookups(base)["hit"] - before["hit"]
                    if name not in pgbench_tps:
                        pgbench_tps[name] = run_pgbench(
                            cluster, "rates", queries, args.duration, args.connections, workdir
                        )
                    tps = pgbench_tps[name]
                    answers[cache][name] = api
                    print(
                        f"{name:>10}, {cache}: {len(queries)} distinct queries, "
                        f"{hits / api['requests']:.0%} of requests answered from the cache | "
                        f"API {api['rps']:.0f} req/s, p50 {api['p50_ms']:.2f} ms, "
                        f"p99 {api['p99_ms']:.2f} ms, failed {api['failed']} of "
                        f"{api['requests']} | pgbench {tps:.0f} tps | ratio {api['rps'] / tps:.2f}"
                    )
        port_pairs = workloads["port pairs"]
        yardsticks = {
            "floor": (
                "bench.floor:app",
                "/",
                "bench/floor.py: a bare ASGI app behind the same server and worker class, "
                "one fixed answer, no database",
            ),
            "ceiling": (
                "bench.ceiling:create_app()",
                f"/rates?{urlencode(port_pairs[0])}",
                "bench/ceiling.py: a bare ASGI app behind the same server and worker class, "
                "the same statement through the API's pool, no validation, logs or metrics",
            ),
        }
        for name, (app, ready, what) in yardsticks.items():
            port = free_port()
            command = [*gunicorn(port), "-k", "rates.api.worker.RatesUvicornWorker"]
            command += ["-w", str(args.workers or default_workers()), app]
            log = workdir / f"{app.split(':')[0]}.log"
            with serving(command, rates_env(cluster), port, ready, log) as base:
                bare = run_wrk(base, port_pairs, args.duration, args.connections, workdir)
            print(
                f"port pairs, the {name} ({what}): {bare['rps']:.0f} req/s, p50 "
                f"{bare['p50_ms']:.2f} ms, p99 {bare['p99_ms']:.2f} ms, failed {bare['failed']} "
                f"of {bare['requests']} | {name} / pgbench "
                f"{bare['rps'] / pgbench_tps['port pairs']:.2f}"
            )
        for label in ("original as shipped", "original with an index"):
            if label == "original with an index":
                with psycopg.connect(cluster.conninfo("original"), autocommit=True) as conn:
                    conn.execute("CREATE INDEX ON prices (orig_code, dest_code, day)")
                    conn.execute("ANALYZE prices")
            port = free_port()
            original_env = {**os.environ, "ORIGINAL_DATABASE_URL": cluster.url("original")}
            ready = f"/rates?{urlencode(port_pairs[0])}"
            original = [*gunicorn(port), "bench.original:app"]
            with serving(original, original_env, port, ready, workdir / "original.log") as base:
                theirs = run_wrk(base, port_pairs, args.duration, args.connections, workdir)
            print(
                f"port pairs, {label} (Flask, gunicorn's default single sync worker): "
                f"{theirs['rps']:.0f} req/s, p50 {theirs['p50_ms']:.2f} ms, "
                f"p99 {theirs['p99_ms']:.2f} ms, failed {theirs['failed']} of "
                f"{theirs['requests']}"
            )
            for cache, ours in answers.items():
                ours = ours["port pairs"]
                print(
                    f"    rates serve, {cache}: {ours['rps'] / theirs['rps']:.1f}x the "
                    f"throughput, p99 {ours['p99_ms']:.2f} against {theirs['p99_ms']:.2f} ms"
                )
        return 0


def gunicorn(port: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}"]


def load_original(cluster: LocalPostgres, dump: Path) -> None:
    """The dump as the original service reads it: psql into a database of its own, so its
    prices table has no index but the ones the dump declares (none on routes)."""
    cluster.create_database("original")
    pg_client(cluster, "psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", "original", "-f", str(dump))
    with psycopg.connect(cluster.conninfo("original"), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


if __name__ == "__main__":
    raise SystemExit(main())
