"""GET /locations (the lane page's pickers) and GET /lanes/example against the sample data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.settings import Settings


@pytest.fixture
def client(sample_database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=sample_database_url))) as client:
        yield client


def find(client: TestClient, q: str, **params: str) -> list[dict]:
    response = client.get("/locations", params={"q": q, **params})
    assert response.status_code == 200, response.text
    locations: list[dict] = response.json()["locations"]
    return locations


def test_finds_a_port_by_its_code_in_any_case(client: TestClient) -> None:
    """A port code, typed in lower case, finds that port first, with its region as parent."""
    first = find(client, "cnsgh")[0]
    assert first == {
        "kind": "port",
        "code": "CNSGH",
        "name": "Shanghai",
        "parent": "china_east_main",
        "parent_name": "China East Main",
        "depth": 2,
    }


def test_finds_a_port_by_its_name(client: TestClient) -> None:
    """Part of a port's name finds it."""
    assert "NLRTM" in [location["code"] for location in find(client, "rotterd")]


def test_finds_regions_by_slug_with_depth_and_parent(client: TestClient) -> None:
    """ "china" finds china_main first (top level, depth 0), then its sub-regions at depth 1."""
    found = find(client, "china")
    assert found[0] == {
        "kind": "region",
        "code": "china_main",
        "name": "China Main",
        "parent": None,
        "parent_name": None,
        "depth": 0,
    }
    sub_regions = {loc["code"]: loc for loc in found if loc["parent"] == "china_main"}
    assert set(sub_regions) == {"china_east_main", "china_north_main", "china_south_main"}
    assert {loc["depth"] for loc in sub_regions.values()} == {1}


def test_finds_a_region_by_its_name_and_depth_counts_every_level(client: TestClient) -> None:
    """A name with spaces finds the region; a region two levels down has depth 2."""
    found = find(client, "Stockholm Area")
    assert found[0]["code"] == "stockholm_area"
    assert found[0]["parent"] == "scandinavia"
    assert found[0]["depth"] == 2


def test_underscore_and_percent_are_literal_characters(client: TestClient) -> None:
    """LIKE wildcards in q match only themselves: "_" is not "any character", "%" not "any"."""
    assert [loc["code"] for loc in find(client, "china_m")] == ["china_main"]
    assert find(client, "%") == []


def test_exact_matches_come_first_and_limit_caps_the_list(client: TestClient) -> None:
    """An exact slug beats longer slugs containing it; limit bounds the answer."""
    assert find(client, "baltic")[0]["code"] == "baltic"
    assert len(find(client, "a", limit="3")) == 3


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"q": "china\x00"}, "q"),
        ({"q": "china", "limit": "0"}, "limit"),
        ({"q": "china", "limit": "51"}, "limit"),
        ({"q": "china", "limit": "ten"}, "limit"),
    ],
)
def test_a_missing_or_malformed_parameter_is_a_400_naming_it(
    client: TestClient, params: dict[str, str], parameter: str
) -> None:
    """Empty, blank, too long or control-character q and a bad limit answer 400 naming it."""
    response = client.get("/locations", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["details"] == {"parameter": parameter}


def test_the_example_lane_spans_the_last_31_days_with_prices(client: TestClient) -> None:
    """The example is the first two top-level regions over the 31 days ending at the last
    day with prices (the sample ends on 2021-01-31)."""
    response = client.get("/lanes/example")
    assert response.json() == {
        "origin": "china_main",
        "destination": "northern_europe",
        "date_from": "2021-01-01",
        "date_to": "2021-01-31",
    }


def test_no_example_lane_without_prices(database_url: str) -> None:
    """An empty database has no example lane: 404 no_data."""
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        response = client.get("/lanes/example")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_data"
