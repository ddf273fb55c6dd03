"""The rates query without a database: every bad parameter is a 400 naming it, and the
names choose which statement is tried first."""

from __future__ import annotations

from datetime import date

import pytest

from rates.errors import InvalidRequest
from rates.query import (
    LARGE_REGION_PAIR_RATES_SQL,
    PORT_PAIR_RATES_SQL,
    LargeRegions,
    RatesQuery,
    shortcut_for,
)


def parse(**overrides: str | None) -> RatesQuery:
    params: dict[str, str | None] = {
        "date_from": "2021-01-01",
        "date_to": "2021-01-31",
        "origin": "CNSGH",
        "destination": "north_europe_main",
    }
    params.update(overrides)
    return RatesQuery.parse(max_range_days=366, **params)


def test_valid_parameters_parse_into_dates() -> None:
    """Well-formed parameters give real dates and trimmed locations."""
    query = parse(origin=" CNSGH ")
    assert query == RatesQuery(date(2021, 1, 1), date(2021, 1, 31), "CNSGH", "north_europe_main")


@pytest.mark.parametrize(
    ("overrides", "parameter", "message"),
    [
        ({"date_from": None}, "date_from", "required"),
        ({"date_to": ""}, "date_to", "required"),
        ({"date_from": "2021-13-01"}, "date_from", "real date"),
        ({"date_to": "2021-02-30"}, "date_to", "real date"),
        ({"date_from": "01/01/2021"}, "date_from", "real date"),
        ({"date_from": "2021-1-1"}, "date_from", "real date"),
        ({"date_from": "20210101"}, "date_from", "real date"),
        ({"date_from": "2021-02-01", "date_to": "2021-01-01"}, "date_from", "after"),
        ({"date_from": "2020-01-01", "date_to": "2021-01-01"}, "date_to", "at most 366"),
        ({"origin": None}, "origin", "orig_code"),
        ({"destination": "  "}, "destination", "dest_code"),
    ],
)
def test_bad_parameters_raise_invalid_request(
    overrides: dict[str, str | None], parameter: str, message: str
) -> None:
    """Each malformed, missing or inconsistent parameter is named in the error."""
    with pytest.raises(InvalidRequest, match=message) as raised:
        parse(**overrides)
    assert raised.value.status_code == 400
    assert raised.value.details["parameter"] == parameter


def test_a_range_of_exactly_the_maximum_is_allowed() -> None:
    """366 days inclusive (a leap year) is within the default limit."""
    query = parse(date_from="2020-01-01", date_to="2020-12-31")
    assert (query.date_to - query.date_from).days + 1 == 366


@pytest.mark.parametrize(
    ("origin", "destination", "statement"),
    [
        ("CNSGH", "NLRTM", PORT_PAIR_RATES_SQL),
        ("north_europe", "china_main", LARGE_REGION_PAIR_RATES_SQL),
        ("north_europe", "baltic", None),  # a small region: the general statement at once
        ("CNSGH", "china_main", None),  # port to region
        ("cnsgh", "NLRTM", None),  # lower case is never a port code's
    ],
)
def test_the_statement_tried_first_follows_the_names(
    origin: str, destination: str, statement: str | None
) -> None:
    query = RatesQuery.parse(
        date_from="2021-01-01",
        date_to="2021-01-31",
        origin=origin,
        destination=destination,
        max_range_days=366,
    )
    large = LargeRegions(slugs=frozenset({"north_europe", "china_main"}), data_version=1)
    assert shortcut_for(query, large) == statement
