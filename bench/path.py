"""Request-path benchmark: instructions per /rates request, `rates serve`'s app against the ceiling.

Timings on a shared machine swing by a third from one minute to the next; instruction counts
do not. Loads the sample dump (or --dump) into a private PostgreSQL, draws distinct port-pair
queries with random 1-31 day windows, and calls each app in process as its server would (one
ASGI call per request, no HTTP parsing, which is the same for every app): the API as `rates
serve` builds it (its defaults, the answer cache off, logs to a pipe, so in the JSON format)
and bench/ceiling.py (the same statement through the same pool, nothing else). Each runs under
valgrind's cachegrind twice, over the queries once and three times; the difference divided by
twice the number of queries is what one request costs, start-up and warm-up excluded.
PostgreSQL's own work is not counted: it runs in another process. Needs valgrind.

    .venv/bin/python -m bench.path [--dump ../shared/data/rates.sql] [--queries 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg

from bench.api import DEFAULT_DUMP, load_settled, port_pair_queries
from bench.ceiling import PortPairAnswer
from bench.stack import REPO, machine, private_cluster, rates_env
from rates.api.app import create_app
from rates.observability.logs import configure_logging
from rates.settings import Settings

APPS = {
    "rates serve's app": "api",
    "the ceiling (bench/ceiling.py)": "ceiling",
}


def instructions(app: str, queries: Path, rounds: int, env: dict[str, str]) -> int:
    """Instructions the process executes calling ``app`` over the queries ``rounds`` times."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command += [sys.executable, "-m", "bench.path", "--call", app, str(queries), str(rounds)]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    counted = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if counted is None:
        raise RuntimeError(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
    return int(counted.group(1).replace(",", ""))


def call(app_name: str, queries_file: Path, rounds: int) -> None:
    """The child: builds the app, opens its pool, and calls it once per query, ``rounds`` times."""
    settings = Settings()
    configure_logging(settings)
    scopes = [
        {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/rates",
            "raw_path": b"/rates",
            "query_string": urlencode(query).encode(),
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        for query in json.loads(queries_file.read_text())
    ]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run() -> None:
        app: Any
        if app_name == "api":  # its lifespan opens its pool (and its sampler), as a server would
            app = create_app(settings)
            running, pool = app.router.lifespan_context(app), app.state.pool
        else:
            app = PortPairAnswer(settings)
            running = pool = app.pool
        async with running:
            await pool.wait()
            for _ in range(rounds):
                for scope in scopes:
                    await app(dict(scope), receive, send)

    asyncio.run(run())
    if set(statuses) != {200}:
        raise SystemExit(f"{app_name}: answers other than 200: {sorted(set(statuses))}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dump", type=Path, default=DEFAULT_DUMP)
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--call", nargs=3, metavar=("APP", "QUERIES", "ROUNDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.call:
        call(args.call[0], Path(args.call[1]), int(args.call[2]))
        return 0
    if shutil.which("valgrind") is None:
        sys.exit("valgrind not found: apt-get install valgrind")
    with private_cluster("rates-bench-path-") as (workdir, cluster):
        with psycopg.connect(cluster.conninfo("rates"), autocommit=True) as conn:
            load_settled(conn, args.dump)
            queries = port_pair_queries(conn, args.queries, random.Random(args.seed))
        queries_file = workdir / "queries.json"
        queries_file.write_text(json.dumps(queries))
        env = rates_env(cluster, RATES_ANSWER_CACHE_MB="0")
        print(
            f"{machine()}; {len(queries):,} distinct port-pair queries (random 1-31 day windows) "
            f"from {args.dump.name}, answer cache off, each app called in process"
        )
        per_request: dict[str, float] = {}
        for label, app in APPS.items():
            once, thrice = (instructions(app, queries_file, n, env) for n in (1, 3))
            per_request[label] = (thrice - once) / (2 * len(queries))
            print(f"{label:>32}: {per_request[label] / 1e6:.3f}M instructions a request")
        api, ceiling = per_request.values()
        print(f"rates serve's app / the ceiling: {api / ceiling:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
