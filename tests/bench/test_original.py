"""bench/original.py, bench.api's yardstick, answers port pairs as `rates serve` does: the same
days, counts and averages from the same dump, loaded the original's way (psql into its own
three tables)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta

import psycopg
import pytest
from bench.original import create_app as create_original
from bench.stack import pg_client
from fastapi.testclient import TestClient
from flask.testing import FlaskClient

from rates.api.app import create_app
from rates.devstack import LocalPostgres
from rates.settings import Settings
from tests.conftest import SAMPLE_DUMP


@pytest.fixture
def original(postgres: LocalPostgres) -> Iterator[FlaskClient]:
    if not SAMPLE_DUMP.exists():
        pytest.skip(f"sample dump not found at {SAMPLE_DUMP}")
    with psycopg.connect(postgres.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS original_service")
        conn.execute("CREATE DATABASE original_service")
    pg_client(
        postgres, "psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", "original_service",
        "-f", str(SAMPLE_DUMP),
    )  # fmt: skip
    yield create_original(postgres.url("original_service")).test_client()
    with psycopg.connect(postgres.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE original_service WITH (FORCE)")


def test_port_pairs_get_the_same_answers(original: FlaskClient, sample_database_url: str) -> None:
    with psycopg.connect(sample_database_url) as conn:
        routes = conn.execute("SELECT DISTINCT orig_code, dest_code FROM prices ORDER BY 1, 2")
        pairs = routes.fetchall()
    rng = random.Random(3)
    with TestClient(create_app(Settings(database_url=sample_database_url))) as ours:
        priced_days = 0
        for origin, destination in rng.sample(pairs, 25):
            first = date(2021, 1, 1) + timedelta(days=rng.randrange(31))
            params = {
                "orig_code": origin,
                "dest_code": destination,
                "date_from": first.isoformat(),
                "date_to": (first + timedelta(days=rng.randrange(1, 40))).isoformat(),
            }
            theirs = original.get("/rates", query_string=params)
            mine = ours.get("/rates", params=params)
            assert theirs.status_code == mine.status_code == 200
            expected = theirs.get_json()["rates"]
            assert [rate["day"] for rate in mine.json()["rates"]] == [r["day"] for r in expected]
            priced_days += sum(1 for rate in expected if rate["price"] is not None)
            for rate, reference in zip(mine.json()["rates"], expected, strict=True):
                assert rate["count"] == (reference["count"] or 0), (params, rate["day"])
                if reference["price"] is None:
                    assert rate["price"] is None, (params, rate["day"])
                else:
                    assert rate["price"] == pytest.approx(reference["price"], rel=1e-12)
        assert priced_days > 100


def test_the_original_refuses_what_it_cannot_read(original: FlaskClient) -> None:
    assert original.get("/rates", query_string={"date_from": "2021-01-01"}).status_code == 400
    bad_day = {"date_from": "2021-13-01", "date_to": "2021-01-02", "orig_code": "CNSGH"}
    assert original.get("/rates", query_string=bad_day).status_code == 400
