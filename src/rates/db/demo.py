"""A realistic synthetic data set, so the service runs and benchmarks scale without the sample.

The region tree is ``depth`` levels deep with ports hanging at every level; routes join random
port pairs; each route and day gets a varying number of prices (zero to twice the mean), so
some days fall under the three-price threshold as in real data. The same seed gives the same
data. Prices are generated inside PostgreSQL (``generate_series``), so millions of rows take
seconds rather than a Python loop.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from rates.db.queries import rates_tables_are_empty, rebuild_read_model, vacuum_read_model
from rates.errors import DataAlreadyLoaded


@dataclass(frozen=True)
class DemoSpec:
    ports: int = 60
    days: int = 92
    prices_per_route_day: float = 3.0
    routes: int | None = None
    depth: int = 4
    branching: int = 3
    first_day: date = date(2021, 1, 1)
    seed: int = 42

    @property
    def route_count(self) -> int:
        possible = self.ports * (self.ports - 1)
        return min(possible, self.routes if self.routes is not None else self.ports * 4)


@dataclass(frozen=True)
class DemoResult:
    regions: int
    ports: int
    routes: int
    prices: int


def _region_tree(spec: DemoSpec) -> list[tuple[str, str, str | None]]:
    """(slug, name, parent) for a tree ``depth`` levels deep, ``branching`` children each."""
    regions: list[tuple[str, str, str | None]] = []
    level: list[str | None] = [None]
    for _ in range(spec.depth):
        next_level: list[str | None] = []
        for parent in level:
            for child in range(1, spec.branching + 1):
                slug = f"{parent}_{child}" if parent else f"area_{child}"
                name = "Area " + slug.removeprefix("area_").replace("_", ".")
                regions.append((slug, name, parent))
                next_level.append(slug)
        level = next_level
    return regions


def _port_codes(rng: random.Random, count: int) -> list[str]:
    """UN/LOCODE-shaped codes: two country letters and three location letters, all distinct."""
    codes: set[str] = set()
    while len(codes) < count:
        codes.add("".join(rng.choices(string.ascii_uppercase, k=5)))
    return sorted(codes)


def generate_demo(
    conn: psycopg.Connection[Any], spec: DemoSpec, *, replace: bool = False
) -> DemoResult:
    """Writes the demo data set in one transaction; refuses to mix it with existing data."""
    rng = random.Random(spec.seed)
    regions = _region_tree(spec)
    codes = _port_codes(rng, spec.ports)
    # Every region level gets ports, so region queries must walk the whole tree.
    ports = [(code, f"Port {code}", regions[rng.randrange(len(regions))][0]) for code in codes]
    routes: set[tuple[str, str]] = set()
    while len(routes) < spec.route_count:
        origin, destination = rng.sample(codes, 2)
        routes.add((origin, destination))
    base_prices = [(o, d, rng.randint(300, 4000)) for o, d in sorted(routes)]

    with conn.transaction():
        if not rates_tables_are_empty(conn):
            if not replace:
                raise DataAlreadyLoaded(
                    "the database already holds rates data; use --replace to empty the tables "
                    "and generate demo data instead"
                )
            conn.execute("TRUNCATE prices, ports, regions")
        with conn.cursor() as cur:
            with cur.copy("COPY regions (slug, name, parent_slug) FROM STDIN") as copy:
                for region in regions:
                    copy.write_row(region)
            with cur.copy("COPY ports (code, name, parent_slug) FROM STDIN") as copy:
                for port in ports:
                    copy.write_row(port)
            cur.execute(
                "CREATE TEMPORARY TABLE demo_routes"
                " (orig_code text, dest_code text, base_price int) ON COMMIT DROP"
            )
            with cur.copy("COPY demo_routes FROM STDIN") as copy:
                for route in base_prices:
                    copy.write_row(route)
            # Deterministic random(): one seeded, single-process scan.
            cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cur.execute("SELECT setseed(%s)", [(spec.seed % 1000) / 1000])
            cur.execute(
                """
                INSERT INTO prices (orig_code, dest_code, day, price)
                SELECT r.orig_code, r.dest_code, d.day,
                       greatest(1, round(r.base_price * (0.85 + 0.3 * random())))::int
                FROM demo_routes r
                CROSS JOIN generate_series(
                    %(first_day)s::date, %(first_day)s::date + %(days)s - 1, interval '1 day'
                ) AS d(day)
                -- Referencing both r and d makes the count vary per route *and* day.
                CROSS JOIN LATERAL generate_series(
                    1, floor(random() * (2 * %(mean)s + 1))::int
                       + 0 * (r.base_price + extract(doy FROM d.day)::int)
                ) AS n(i)
                """,
                {
                    "first_day": spec.first_day,
                    "days": spec.days,
                    "mean": spec.prices_per_route_day,
                },
            )
            prices = cur.rowcount
            rebuild_read_model(conn)
    vacuum_read_model(conn)
    return DemoResult(regions=len(regions), ports=len(ports), routes=len(routes), prices=prices)
