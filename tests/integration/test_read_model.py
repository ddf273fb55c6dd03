"""The totals the rates query reads give the original's arithmetic: for every kind of pair
(ports, small and large regions at every depth), the answer equals a plain average over
prices."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.db.demo import DemoSpec, generate_demo
from rates.db.queries import rebuild_read_model
from rates.ingest import batches as batch_sql
from rates.query import DAILY_RATES_SQL, LARGE_REGION_PAIR_RATES_SQL, MIN_PRICES_PER_DAY
from rates.settings import Settings
from tests.ingest_helpers import AUTH, ingest_settings, submit_and_apply

FIRST_DAY = date(2021, 1, 1)
DAYS = 20

# The original's answer, straight from prices: every port under a region, at any depth.
PLAIN_AVERAGE = """
WITH RECURSIVE
origin_regions AS (
    SELECT slug FROM regions WHERE slug = %(origin)s
    UNION SELECT r.slug FROM regions r JOIN origin_regions o ON r.parent_slug = o.slug
),
destination_regions AS (
    SELECT slug FROM regions WHERE slug = %(destination)s
    UNION SELECT r.slug FROM regions r JOIN destination_regions d ON r.parent_slug = d.slug
)
SELECT day, avg(price), count(*) FROM prices
WHERE (orig_code = %(origin)s
       OR orig_code IN (SELECT code FROM ports
                        WHERE parent_slug IN (SELECT slug FROM origin_regions)))
  AND (dest_code = %(destination)s
       OR dest_code IN (SELECT code FROM ports
                        WHERE parent_slug IN (SELECT slug FROM destination_regions)))
  AND day BETWEEN %(date_from)s AND %(date_to)s
GROUP BY day
"""


@pytest.fixture
def demo_url(database_url: str) -> str:
    """A 4-level demo tree of 80 ports; regions of 12 ports or more are large."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        generate_demo(conn, DemoSpec(ports=80, days=DAYS, routes=900, seed=5))
        with conn.transaction():
            rebuild_read_model(conn, rollup_min_ports=12)
    return database_url


@pytest.fixture
def client(demo_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=demo_url))) as test_client:
        yield test_client


def pairs(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Large x large, large x small, small x small and port pairs at every depth."""
    large = {row[0] for row in conn.execute("SELECT slug FROM rollup_regions")}
    regions = [row[0] for row in conn.execute("SELECT slug FROM regions ORDER BY slug")]
    small = [slug for slug in regions if slug not in large]
    ports = [row[0] for row in conn.execute("SELECT code FROM ports ORDER BY code LIMIT 6")]
    rng = random.Random(1)
    chosen = list(itertools.permutations(sorted(large), 2))
    chosen += [(origin, origin) for origin in sorted(large)[:3]]
    chosen += [(rng.choice(sorted(large)), rng.choice(small)) for _ in range(6)]
    chosen += [(rng.choice(small), rng.choice(sorted(large))) for _ in range(6)]
    chosen += [tuple(rng.sample(small, 2)) for _ in range(6)]  # type: ignore[misc]
    chosen += [(port, rng.choice(regions)) for port in ports]
    chosen += list(itertools.permutations(ports[:3], 2))
    return chosen


def assert_every_kind_of_pair_equals_a_plain_average(client: TestClient, url: str) -> int:
    """Counts equal and means agree to float precision; days under 3 prices are null. Returns
    how many prices the compared answers counted."""
    with psycopg.connect(url) as conn:
        depths = dict(
            conn.execute(
                """
                WITH RECURSIVE tree AS (
                    SELECT slug, 1 AS depth FROM regions WHERE parent_slug IS NULL
                    UNION ALL
                    SELECT r.slug, tree.depth + 1
                    FROM regions r JOIN tree ON r.parent_slug = tree.slug
                ) SELECT slug, depth FROM tree
                """
            ).fetchall()
        )
        large = {row[0] for row in conn.execute("SELECT slug FROM rollup_regions")}
        assert {depths[slug] for slug in large} == {1, 2}, "the tree has large and small levels"
        compared = pairs(conn)
        assert {depths.get(o, 0) for o, _ in compared} >= {0, 1, 2, 3, 4}
        window = {"date_from": FIRST_DAY, "date_to": FIRST_DAY + timedelta(days=DAYS - 1)}
        counted = 0
        for origin, destination in compared:
            params = {"origin": origin, "destination": destination, **window}
            expected = {
                day: (float(mean), count)
                for day, mean, count in conn.execute(PLAIN_AVERAGE, params).fetchall()
            }
            response = client.get("/rates", params={k: str(v) for k, v in params.items()})
            assert response.status_code == 200, response.text
            for rate in response.json()["rates"]:
                mean, count = expected.get(date.fromisoformat(rate["day"]), (None, 0))
                assert rate["count"] == count, (origin, destination, rate)
                if count < 3:
                    assert rate["price"] is None
                else:
                    assert math.isclose(rate["price"], mean, rel_tol=1e-12), (origin, rate)
                counted += count
    return counted


def test_every_kind_of_pair_equals_a_plain_average_over_prices(
    client: TestClient, demo_url: str
) -> None:
    """Over merged totals (as a load or demo data leaves them)."""
    assert assert_every_kind_of_pair_equals_a_plain_average(client, demo_url) > 10_000


def test_batches_not_merged_or_merged_halfway_count_exactly_once(
    client: TestClient, demo_url: str, tmp_path: Path
) -> None:
    """Route-days of batches a worker applied but has not merged yet, and of one merged
    halfway, are read through their own index beside the merged rows: every kind of pair
    still equals the plain average over prices, new batches included."""
    settings = ingest_settings(demo_url, tmp_path)
    with psycopg.connect(demo_url) as conn:
        ports = [row[0] for row in conn.execute("SELECT code FROM ports ORDER BY code")]
    rng = random.Random(11)
    with TestClient(create_app(settings)) as ingest:
        for _ in range(3):
            lines = ["orig_code,dest_code,day,price"]
            for _ in range(3_000):
                origin, destination = rng.sample(ports, 2)
                day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
                lines.append(f"{origin},{destination},{day},{rng.randint(100, 5000)}")
            body = ("\n".join(lines) + "\n").encode()
            batch = submit_and_apply(ingest, settings, body, {**AUTH, "Content-Type": "text/csv"})
            assert batch["status"] == "succeeded", batch
    with psycopg.connect(demo_url, autocommit=True) as side:
        halfway = batch_sql.merge_some(side, rows=1_000)
        assert halfway is not None and not halfway.done
        appended_batches = side.execute(
            "SELECT count(DISTINCT batch_id) FROM route_days WHERE batch_id IS NOT NULL"
        ).fetchone()
    assert appended_batches == (3,)
    assert assert_every_kind_of_pair_equals_a_plain_average(client, demo_url) > 10_000 + 9_000


def test_a_region_without_ports_answers_days_with_no_prices(
    client: TestClient, demo_url: str
) -> None:
    """An existing region that holds no port is a known location: 200 and count 0 each day."""
    with psycopg.connect(demo_url) as conn:
        conn.execute("INSERT INTO regions VALUES ('empty_area', 'Empty', 'area_1')")
    response = client.get(
        "/rates",
        params={
            "date_from": "2021-01-01",
            "date_to": "2021-01-03",
            "origin": "empty_area",
            "destination": "area_2",
        },
    )
    assert response.status_code == 200, response.text
    assert [day["count"] for day in response.json()["rates"]] == [0, 0, 0]


def test_the_large_pair_shortcut_answers_large_pairs_only_and_as_the_general_statement(
    demo_url: str,
) -> None:
    """LARGE_REGION_PAIR_RATES_SQL says it answers exactly when both names are large regions,
    and then gives DAILY_RATES_SQL's days, prices and counts."""
    with psycopg.connect(demo_url) as conn:
        large = {row[0] for row in conn.execute("SELECT slug FROM rollup_regions")}
        window = {
            "date_from": FIRST_DAY,
            "date_to": FIRST_DAY + timedelta(days=DAYS - 1),
            "min_prices": MIN_PRICES_PER_DAY,
        }
        answered = 0
        for origin, destination in pairs(conn):
            params = {"origin": origin, "destination": destination, **window}
            rows = conn.execute(LARGE_REGION_PAIR_RATES_SQL, params).fetchall()
            assert rows[0][0] == (origin in large and destination in large), (origin, destination)
            if not rows[0][0]:
                continue
            general = conn.execute(DAILY_RATES_SQL, params).fetchall()
            shortcut = {day: (price, count) for _, _, day, price, count in rows if day is not None}
            assert shortcut == {day: (price, count) for day, price, count, *_ in general if count}
            assert rows[0][1] == general[0][5]  # the same data version
            answered += 1
        assert answered >= len(large) * (len(large) - 1)


def test_each_api_process_learns_the_large_regions_and_relearns_them_on_a_new_version(
    client: TestClient, demo_url: str
) -> None:
    """The set only picks the statement to try first; after a rebuild that changes it (a new
    data version), the next answer reads it again and is still the plain average."""
    with psycopg.connect(demo_url) as conn:
        large = sorted(row[0] for row in conn.execute("SELECT slug FROM rollup_regions"))
    params = {
        "origin": large[0],
        "destination": large[1],
        "date_from": str(FIRST_DAY),
        "date_to": str(FIRST_DAY + timedelta(days=DAYS - 1)),
    }
    before = client.get("/rates", params=params).json()
    assert client.app.state.large_regions.slugs == set(large)  # type: ignore[attr-defined]
    with psycopg.connect(demo_url) as conn, conn.transaction():
        rebuild_read_model(conn, rollup_min_ports=10_000)  # no region is large any more
    assert client.get("/rates", params=params).json() == before  # read from route_days now
    assert client.app.state.large_regions.slugs == set()  # type: ignore[attr-defined]
