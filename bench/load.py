"""Load benchmark: `rates db load` of a pg_dump file vs psql restoring the same file.

Generates demo data (default 10M prices: 1,000 ports, a 4-level region tree, 5,479 routes over
365 days, ~5 prices per route and day), copies it into a database shaped like the original
(regions, ports, prices with their keys, as the sample dump is) and pg_dumps that to a plain SQL
file. Then, on stock PostgreSQL settings, times `psql -f` of the file into an empty database and
`rates db load` of the same file into a freshly migrated one (which also builds the daily
totals the rates query reads and refreshes planner statistics), alternating, each from a
checkpointed cluster, and prints each run, its ratio and the ratio of the best times.

    .venv/bin/python -m bench.load [--prices 10000000] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench.stack import machine, pg_client, private_cluster, rates_env
from rates.db.demo import DemoSpec, generate_demo
from rates.db.migrate import migrate
from rates.devstack import LocalPostgres

DAYS = 365
PRICES_PER_ROUTE_DAY = 5
ORIGINAL_SCHEMA = """
CREATE TABLE regions (slug text PRIMARY KEY, name text NOT NULL,
                      parent_slug text REFERENCES regions (slug));
CREATE TABLE ports (code text PRIMARY KEY, name text NOT NULL,
                    parent_slug text NOT NULL REFERENCES regions (slug));
CREATE TABLE prices (orig_code text NOT NULL REFERENCES ports (code),
                     dest_code text NOT NULL REFERENCES ports (code),
                     day date NOT NULL, price integer NOT NULL);
"""


def write_dump(cluster: LocalPostgres, prices: int, path: str) -> int:
    """Demo data in the original's three tables, dumped with pg_dump; its price count."""
    routes = round(prices / (DAYS * PRICES_PER_ROUTE_DAY))
    spec = DemoSpec(
        ports=1000, days=DAYS, prices_per_route_day=PRICES_PER_ROUTE_DAY, routes=routes, seed=7
    )
    with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
        migrate(conn)
        generated = generate_demo(conn, spec).prices
    cluster.create_database("original")
    with psycopg.connect(cluster.conninfo("original"), autocommit=True) as conn:
        conn.execute(ORIGINAL_SCHEMA)
    for table, columns in (
        ("regions", "slug, name, parent_slug"),
        ("ports", "code, name, parent_slug"),
        ("prices", "orig_code, dest_code, day, price"),
    ):
        with (
            psycopg.connect(cluster.conninfo("rates")) as source,
            psycopg.connect(cluster.conninfo("original")) as target,
            source.cursor().copy(f"COPY {table} ({columns}) TO STDOUT") as out,
            target.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as into,
        ):
            for block in out:
                into.write(block)
    pg_client(cluster, "pg_dump", "-d", "original", "-f", path)
    return generated


def settled(cluster: LocalPostgres) -> None:
    """Writes out what earlier steps left dirty, so no timed load pays for another's writes."""
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()


def timed_psql_load(cluster: LocalPostgres, database: str, dump: str) -> float:
    cluster.create_database(database)
    settled(cluster)
    started = time.perf_counter()
    pg_client(cluster, "psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", dump)
    return time.perf_counter() - started


def timed_rates_load(cluster: LocalPostgres, database: str, dump: str) -> float:
    cluster.create_database(database)
    with psycopg.connect(cluster.conninfo(database), autocommit=True) as conn:
        migrate(conn)
    env = rates_env(cluster)
    env["RATES_DATABASE_URL"] = cluster.url(database)
    settled(cluster)
    started = time.perf_counter()
    with (Path(dump).parent / "rates-db-load.log").open("ab") as log:
        subprocess.run(
            [sys.executable, "-m", "rates", "db", "load", dump],
            env=env,
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prices", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=2, help="loads by each, alternating")
    args = parser.parse_args()
    with private_cluster("rates-bench-load-") as (workdir, cluster):
        dump = str(workdir / "dump.sql")
        prices = write_dump(cluster, args.prices, dump)
        size_mb = os.path.getsize(dump) / 1e6
        print(
            f"{machine()}; stock PostgreSQL settings;"
            f" dump: {prices:,} prices, 1,000 ports, 120 regions, {size_mb:.0f} MB plain SQL"
        )
        timings: dict[str, list[float]] = {"psql": [], "rates": []}
        for run in range(1, args.runs + 1):
            timings["psql"].append(timed_psql_load(cluster, f"by_psql_{run}", dump))
            timings["rates"].append(timed_rates_load(cluster, f"by_rates_{run}", dump))
        print("run  psql -f (tables, keys, foreign keys)  rates db load (+ daily totals)  ratio")
        runs = zip(timings["psql"], timings["rates"], strict=True)
        for run, (psql_s, rates_s) in enumerate(runs, 1):
            print(f"{run:3d}  {psql_s:35.1f} s  {rates_s:28.1f} s  {rates_s / psql_s:5.2f}")
        psql_s, rates_s = min(timings["psql"]), min(timings["rates"])
        print(f"best of {args.runs}: ratio rates / psql {rates_s / psql_s:.2f} (target <= 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
