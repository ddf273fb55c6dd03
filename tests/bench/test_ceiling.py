"""bench/ceiling.py, bench.api's yardstick for the driver's share, answers port pairs exactly as
`rates serve` does: same statement, same body, byte for byte."""

from __future__ import annotations

import random

import psycopg
from bench.api import port_pair_queries
from bench.ceiling import PortPairAnswer
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.settings import Settings


def test_port_pairs_get_the_same_bodies(sample_database_url: str) -> None:
    """Over bench.api's own kind of URLs: random routes and windows of the sample."""
    with psycopg.connect(sample_database_url) as conn:
        queries = port_pair_queries(conn, 20, random.Random(5))
    settings = Settings(database_url=sample_database_url)
    priced = unpriced = 0
    with TestClient(create_app(settings)) as ours, TestClient(PortPairAnswer(settings)) as bare:
        for params in queries:
            mine, theirs = ours.get("/rates", params=params), bare.get("/rates", params=params)
            assert mine.status_code == theirs.status_code == 200
            assert theirs.content == mine.content, params
            rates = mine.json()["rates"]
            priced += sum(1 for rate in rates if rate["price"] is not None)
            unpriced += sum(1 for rate in rates if rate["price"] is None)
    assert priced > 50 and unpriced > 0  # both kinds of day compared
