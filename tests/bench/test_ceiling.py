"""bench/ceiling.py, bench.api's yardstick for the driver's share, answers port pairs exactly as
`rates serve` does: same statement, same body, byte for byte."""

from __future__ import annotations

import random
from datetime import date, timedelta

import psycopg
from bench.ceiling import PortPairAnswer
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.settings import Settings


def test_port_pairs_get_the_same_bodies(sample_database_url: str) -> None:
    with psycopg.connect(sample_database_url) as conn:
        routes = conn.execute("SELECT DISTINCT orig_code, dest_code FROM prices ORDER BY 1, 2")
        pairs = routes.fetchall()
    settings = Settings(database_url=sample_database_url)
    rng = random.Random(5)
    priced = 0
    with TestClient(create_app(settings)) as ours, TestClient(PortPairAnswer(settings)) as bare:
        for origin, destination in rng.sample(pairs, 20):
            first = date(2021, 1, 1) + timedelta(days=rng.randrange(31))
            params = {
                "orig_code": origin,
                "dest_code": destination,
                "date_from": first.isoformat(),
                "date_to": (first + timedelta(days=rng.randrange(1, 40))).isoformat(),
            }
            mine, theirs = ours.get("/rates", params=params), bare.get("/rates", params=params)
            assert mine.status_code == theirs.status_code == 200
            assert theirs.content == mine.content, params
            priced += sum(1 for rate in mine.json()["rates"] if rate["price"] is not None)
    assert priced > 50
