"""GET /rates as CSV: the same answer as the JSON, as a named download."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.api.rates_csv import rates_csv_response
from rates.query import DailyRate, RatesQuery
from rates.settings import Settings

LANE = {
    "origin": "CNSGH",
    "destination": "north_europe_main",
    "date_from": "2021-01-25",
    "date_to": "2021-02-05",  # past the sample's last day: some days have no prices
}


@pytest.fixture
def client(sample_database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=sample_database_url))) as client:
        yield client


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("params", "headers"),
    [({"format": "csv"}, {}), ({}, {"Accept": "text/csv"})],
    ids=["format=csv", "Accept: text/csv"],
)
def test_csv_has_the_same_rows_as_json(
    client: TestClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    """Every JSON entry is a CSV row in the same order, price unrounded, empty when null."""
    expected = client.get("/rates", params=LANE).json()["rates"]
    response = client.get("/rates", params={**LANE, **params}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="rates_CNSGH_north_europe_main_2021-01-25_2021-02-05.csv"'
    )
    assert response.text.splitlines()[0] == "day,price,count"
    rows = csv_rows(response.text)
    assert [
        {
            "day": row["day"],
            "price": float(row["price"]) if row["price"] else None,
            "count": int(row["count"]),
        }
        for row in rows
    ] == expected
    assert any(row["price"] == "" for row in rows) and any(row["price"] for row in rows)


def test_json_stays_the_default_and_both_vary_on_accept(client: TestClient) -> None:
    """A browser's Accept (HTML first, */* last) gets JSON; both forms say they vary on Accept,
    so a cache never hands one to a client asking for the other."""
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    as_json = client.get("/rates", params=LANE, headers={"Accept": browser_accept})
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.headers["vary"] == "Accept"
    preferring_json = client.get(
        "/rates", params=LANE, headers={"Accept": "text/csv;q=0.5, application/json"}
    )
    assert preferring_json.headers["content-type"] == "application/json"
    as_csv = client.get("/rates", params={**LANE, "format": "csv"})
    assert as_csv.headers["vary"] == "Accept"


def test_format_json_wins_over_accept_and_a_bad_format_is_a_400(client: TestClient) -> None:
    """format=json answers JSON even to Accept: text/csv; format=xml is refused naming format."""
    response = client.get(
        "/rates", params={**LANE, "format": "json"}, headers={"Accept": "text/csv"}
    )
    assert response.headers["content-type"] == "application/json"
    bad = client.get("/rates", params={**LANE, "format": "xml"})
    assert bad.status_code == 400
    assert bad.json()["error"]["details"] == {"parameter": "format"}


def test_errors_stay_json_when_csv_is_asked_for(client: TestClient) -> None:
    """A bad date with format=csv still answers the JSON error shape."""
    response = client.get("/rates", params={**LANE, "date_from": "2021-02-30", "format": "csv"})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"parameter": "date_from"}


def test_the_file_name_keeps_only_safe_characters() -> None:
    """A slug with quotes, slashes or spaces cannot break out of the Content-Disposition header."""
    query = RatesQuery(
        date_from=date(2021, 1, 1),
        date_to=date(2021, 1, 1),
        origin='a"b/c d',
        destination="x;y",
    )
    response = rates_csv_response(query, [DailyRate(date(2021, 1, 1), None, 0)])
    assert response.headers["content-disposition"] == (
        'attachment; filename="rates_a-b-c-d_x-y_2021-01-01_2021-01-01.csv"'
    )
    assert bytes(response.body) == b"day,price,count\n2021-01-01,,0\n"
