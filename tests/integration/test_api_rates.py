"""GET /rates against the sample data set and a nested region tree, and every error case."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.db.queries import rebuild_read_model
from rates.settings import Settings
from tests.conftest import SAMPLE_DUMP


def client_for(database_url: str, **settings: object) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url, **settings)))


@pytest.fixture
def sample_client(sample_database_url: str) -> Iterator[TestClient]:
    with client_for(sample_database_url) as client:
        yield client


# --- an independent computation, straight from the dump file -----------------------------------


def _dump_blocks() -> dict[str, list[list[str]]]:
    blocks: dict[str, list[list[str]]] = defaultdict(list)
    table = None
    for line in SAMPLE_DUMP.read_text(encoding="utf-8").splitlines():
        if table is None:
            match = re.match(r"COPY public\.(\w+) ", line)
            table = match.group(1) if match else None
        elif line == "\\.":
            table = None
        else:
            blocks[table].append(line.split("\t"))
    return blocks


def expected_rates(origin: str, destination: str, first: date, last: date) -> list[dict]:
    """Averages computed in Python from the raw dump, walking the region tree by hand."""
    blocks = _dump_blocks()
    children: dict[str, list[str]] = defaultdict(list)
    for slug, _, parent in blocks["regions"]:
        children[parent].append(slug)
    port_region = {code: parent for code, _, parent in blocks["ports"]}

    def ports_of(location: str) -> set[str]:
        if location in port_region:
            return {location}
        regions, stack = set(), [location]
        while stack:
            slug = stack.pop()
            regions.add(slug)
            stack.extend(children[slug])
        return {code for code, parent in port_region.items() if parent in regions}

    origins, destinations = ports_of(origin), ports_of(destination)
    by_day: dict[str, list[int]] = defaultdict(list)
    for orig, dest, day, price in blocks["prices"]:
        if orig in origins and dest in destinations:
            by_day[day].append(int(price))
    answer = []
    day = last
    while day >= first:
        prices = by_day.get(day.isoformat(), [])
        average = sum(prices) / len(prices) if len(prices) >= 3 else None
        answer.append({"day": day.isoformat(), "price": average, "count": len(prices)})
        day -= timedelta(days=1)
    return answer


# --- conformance -------------------------------------------------------------------------------


def test_hand_checked_port_pair(sample_client: TestClient) -> None:
    """CNGGZ -> EETLL in January 2021: three prices every day, 1154.33... on the 31st."""
    response = sample_client.get(
        "/rates",
        params={
            "date_from": "2021-01-01",
            "date_to": "2021-01-31",
            "orig_code": "CNGGZ",
            "dest_code": "EETLL",
        },
    )
    assert response.status_code == 200
    rates = response.json()["rates"]
    assert [r["day"] for r in rates] == [f"2021-01-{d:02d}" for d in range(31, 0, -1)]
    assert {r["count"] for r in rates} == {3}
    assert rates[0] == {"day": "2021-01-31", "price": 1154.3333333333333, "count": 3}


@pytest.mark.parametrize(
    ("origin", "destination"),
    [
        ("CNSGH", "NLRTM"),
        ("CNGGZ", "EETLL"),
        ("china_main", "northern_europe"),
        ("CNSGH", "north_europe_main"),
        ("china_east_main", "scandinavia"),
        ("china_main", "DEHAM"),
    ],
)
def test_answers_match_an_independent_computation(
    sample_client: TestClient, origin: str, destination: str
) -> None:
    """Port and region answers equal averages computed in Python from the dump file."""
    first, last = date(2020, 12, 30), date(2021, 2, 2)
    response = sample_client.get(
        "/rates",
        params={
            "date_from": first.isoformat(),
            "date_to": last.isoformat(),
            "origin": origin,
            "destination": destination,
        },
    )
    assert response.status_code == 200
    assert response.json()["rates"] == expected_rates(origin, destination, first, last)
    assert any(r["price"] is not None for r in response.json()["rates"])


def test_days_with_fewer_than_three_prices_have_null_price(sample_client: TestClient) -> None:
    """Outside the data, days are listed with count 0 and price null."""
    response = sample_client.get(
        "/rates",
        params={
            "date_from": "2020-12-30",
            "date_to": "2020-12-31",
            "orig_code": "CNSGH",
            "dest_code": "NLRTM",
        },
    )
    assert response.json() == {
        "rates": [
            {"day": "2020-12-31", "price": None, "count": 0},
            {"day": "2020-12-30", "price": None, "count": 0},
        ]
    }


# --- nested regions ---------------------------------------------------------------------------


@pytest.fixture
def nested_client(database_url: str) -> Iterator[TestClient]:
    """A tree world > continent > country > area with a port at the bottom and at the top."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """
            INSERT INTO regions VALUES
              ('world', 'World', NULL), ('europe', 'Europe', 'world'),
              ('nordics', 'Nordics', 'europe'), ('oslofjord', 'Oslofjord', 'nordics'),
              ('asia', 'Asia', NULL);
            INSERT INTO ports VALUES
              ('DEEP1', 'Deep', 'oslofjord'), ('TOPP1', 'Top', 'world'), ('ASIA1', 'Asia', 'asia');
            INSERT INTO prices VALUES
              ('ASIA1', 'DEEP1', '2021-03-01', 100), ('ASIA1', 'DEEP1', '2021-03-01', 200),
              ('ASIA1', 'TOPP1', '2021-03-01', 600),
              ('DEEP1', 'ASIA1', '2021-03-01', 9999);
            """
        )
        rebuild_read_model(conn)
    with client_for(database_url) as client:
        yield client


def one_day(client: TestClient, origin: str, destination: str) -> dict:
    response = client.get(
        "/rates",
        params={
            "date_from": "2021-03-01",
            "date_to": "2021-03-01",
            "origin": origin,
            "destination": destination,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["rates"][0]


def test_a_port_three_levels_down_is_in_its_ancestors(nested_client: TestClient) -> None:
    """world includes DEEP1 (three levels below) and TOPP1 (directly in it): 3 prices."""
    assert one_day(nested_client, "asia", "world") == {
        "day": "2021-03-01",
        "price": 300.0,
        "count": 3,
    }
    assert one_day(nested_client, "ASIA1", "europe")["count"] == 2
    assert one_day(nested_client, "ASIA1", "oslofjord")["count"] == 2
    assert one_day(nested_client, "asia", "asia")["count"] == 0


def test_a_name_that_is_both_a_port_and_a_region_means_both(database_url: str) -> None:
    """Port pairs have their own statement; a code that is also a region slug must not take it."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """
            INSERT INTO regions VALUES ('BOTH1', 'Both', NULL), ('dest', 'Destination', NULL);
            INSERT INTO ports VALUES
              ('BOTH1', 'Both', 'dest'), ('INSD1', 'Inside', 'BOTH1'), ('DEST1', 'Dest', 'dest');
            INSERT INTO prices VALUES
              ('BOTH1', 'DEST1', '2021-03-01', 100), ('INSD1', 'DEST1', '2021-03-01', 200),
              ('INSD1', 'DEST1', '2021-03-01', 300);
            """
        )
        rebuild_read_model(conn)
    with client_for(database_url) as client:
        both = one_day(client, "BOTH1", "DEST1")
        assert both == {"day": "2021-03-01", "price": 200.0, "count": 3}
        assert one_day(client, "INSD1", "DEST1")["count"] == 2
        assert one_day(client, "DEST1", "BOTH1")["count"] == 0


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "code", "parameter"),
    [
        (
            {"date_to": "2021-01-31", "origin": "CNSGH", "destination": "NLRTM"},
            400,
            "invalid_request",
            "date_from",
        ),
        (
            {
                "date_from": "2021-01-01",
                "date_to": "2021-02-30",
                "origin": "CNSGH",
                "destination": "NLRTM",
            },
            400,
            "invalid_request",
            "date_to",
        ),
        (
            {
                "date_from": "yesterday",
                "date_to": "2021-01-31",
                "origin": "CNSGH",
                "destination": "NLRTM",
            },
            400,
            "invalid_request",
            "date_from",
        ),
        (
            {
                "date_from": "2021-02-01",
                "date_to": "2021-01-01",
                "origin": "CNSGH",
                "destination": "NLRTM",
            },
            400,
            "invalid_request",
            "date_from",
        ),
        (
            {
                "date_from": "2019-01-01",
                "date_to": "2021-01-01",
                "origin": "CNSGH",
                "destination": "NLRTM",
            },
            400,
            "invalid_request",
            "date_to",
        ),
        (
            {"date_from": "2021-01-01", "date_to": "2021-01-31", "destination": "NLRTM"},
            400,
            "invalid_request",
            "origin",
        ),
        (
            {"date_from": "2021-01-01", "date_to": "2021-01-31", "origin": "CNSGH"},
            400,
            "invalid_request",
            "destination",
        ),
        (
            {
                "date_from": "2021-01-01",
                "date_to": "2021-01-31",
                "origin": "XXXXX",
                "destination": "NLRTM",
            },
            404,
            "unknown_location",
            "origin",
        ),
        (
            {
                "date_from": "2021-01-01",
                "date_to": "2021-01-31",
                "orig_code": "CNSGH",
                "dest_code": "atlantis",
            },
            404,
            "unknown_location",
            "destination",
        ),
    ],
)
def test_bad_requests_get_json_errors(
    sample_client: TestClient, params: dict, status: int, code: str, parameter: str
) -> None:
    """Each bad request is a 4xx JSON error naming the parameter, never HTML or a 5xx."""
    response = sample_client.get("/rates", params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"]["parameter"] == parameter
    assert error["message"]


def test_the_range_limit_is_configurable(sample_database_url: str) -> None:
    """RATES_MAX_RANGE_DAYS=7 refuses an 8-day range and accepts a 7-day one."""
    with client_for(sample_database_url, max_range_days=7) as client:
        params = {"origin": "CNSGH", "destination": "NLRTM", "date_from": "2021-01-01"}
        assert client.get("/rates", params={**params, "date_to": "2021-01-08"}).status_code == 400
        assert client.get("/rates", params={**params, "date_to": "2021-01-07"}).status_code == 200


def test_unknown_paths_are_json_404s(sample_client: TestClient) -> None:
    """Even routing errors are JSON."""
    response = sample_client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_openapi_documents_the_rates_endpoint(sample_client: TestClient) -> None:
    """/openapi.json lists /rates with its parameters and error responses."""
    spec = sample_client.get("/openapi.json").json()
    operation = spec["paths"]["/rates"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"date_from", "date_to", "orig_code", "dest_code"} <= names
    assert {"200", "400", "404", "503"} <= set(operation["responses"])


# --- health -----------------------------------------------------------------------------------


def test_health_and_readiness_with_a_database(sample_client: TestClient) -> None:
    """Both probes answer 200 while the database is up."""
    assert sample_client.get("/healthz").json() == {"status": "ok"}
    assert sample_client.get("/readyz").json() == {"status": "ready", "replica_lag_s": None}


def test_without_a_database_liveness_holds_and_the_rest_is_503() -> None:
    """With PostgreSQL unreachable: /healthz 200, /readyz and /rates 503 JSON, quickly."""
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none", db_pool_timeout_s=0.5)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "database_unavailable"
        rates = client.get(
            "/rates",
            params={
                "date_from": "2021-01-01",
                "date_to": "2021-01-02",
                "origin": "A",
                "destination": "B",
            },
        )
        assert rates.status_code == 503
        assert rates.json()["error"]["code"] == "database_unavailable"
