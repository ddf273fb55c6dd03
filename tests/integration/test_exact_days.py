"""Days are exact: whatever the database's time zone, only YYYY-MM-DD, and an existing region
without ports is a location with no prices, not an unknown one."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from rates.api.app import create_app
from rates.db.queries import rebuild_read_model
from rates.settings import Settings

# Chile moved its clocks from 00:00 to 01:00 on 2022-09-11: that midnight did not exist there.
DAYS = ["2022-09-09", "2022-09-10", "2022-09-11", "2022-09-12", "2022-09-13"]


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """Two ports with a price on each day around the change, an empty region, and a database
    whose default time zone is America/Santiago."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET timezone = 'America/Santiago'").format(
                sql.Identifier(name)
            )
        )
        conn.execute(
            """
            INSERT INTO regions VALUES ('world', 'World', NULL), ('empty', 'Empty', 'world'),
                                       ('emptier', 'Emptier', 'empty');
            INSERT INTO ports VALUES ('AAAAA', 'A', 'world'), ('BBBBB', 'B', 'world');
            """
        )
        for day in DAYS:
            conn.execute("INSERT INTO prices VALUES ('AAAAA', 'BBBBB', %s, 10)", [day])
        rebuild_read_model(conn)
    with TestClient(create_app(Settings(database_url=database_url))) as test_client:
        yield test_client


def rates(client: TestClient, origin: str, destination: str, first: str, last: str) -> dict:
    params = {"date_from": first, "date_to": last, "origin": origin, "destination": destination}
    return client.get("/rates", params=params).json()


def test_days_around_a_midnight_clock_change_all_count(client: TestClient) -> None:
    """Every day around Santiago's midnight DST change has its price, in a database whose
    time zone is America/Santiago: sessions run in UTC."""
    answer = rates(client, "AAAAA", "BBBBB", DAYS[0], DAYS[-1])["rates"]
    assert [(r["day"], r["count"]) for r in answer] == [(day, 1) for day in reversed(DAYS)]


def test_an_existing_region_without_ports_has_zero_counts(client: TestClient) -> None:
    """A region with no ports (even below it) answers 200 with count 0 each day, either side."""
    for origin, destination in [("empty", "BBBBB"), ("AAAAA", "emptier"), ("empty", "empty")]:
        answer = rates(client, origin, destination, DAYS[0], DAYS[1])
        assert answer == {
            "rates": [
                {"day": DAYS[1], "price": None, "count": 0},
                {"day": DAYS[0], "price": None, "count": 0},
            ]
        }
    assert (
        client.get(
            "/rates",
            params={
                "date_from": DAYS[0],
                "date_to": DAYS[0],
                "origin": "nowhere",
                "destination": "BBBBB",
            },
        ).status_code
        == 404
    )


@pytest.mark.parametrize("day", ["2022-W37-1", "20220912", "2022-09-1\u0662"])
def test_only_yyyy_mm_dd_is_a_day_in_parameters(client: TestClient, day: str) -> None:
    """An ISO week date or another form of a day is a 400 naming the parameter."""
    response = client.get(
        "/rates",
        params={
            "date_from": day,
            "date_to": "2022-09-13",
            "origin": "AAAAA",
            "destination": "BBBBB",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"parameter": "date_from"}
