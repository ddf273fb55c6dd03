"""The answer cache of an API process: answers come from it only while their data version is
the current one, and are then byte for byte what the database would answer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from rates.api.app import create_app
from rates.settings import Settings
from tests.ingest_helpers import AUTH, csv_rows, submit_and_apply

CSV = {**AUTH, "Content-Type": "text/csv"}
WORLD = {"date_from": "2021-02-01", "date_to": "2021-02-03", "origin": "world"}
PORT_PAIR = {"date_from": "2021-02-01", "date_to": "2021-02-03", "origin": "CNSGH"}


def lookups() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("rates_answer_cache_lookups_total", {"outcome": outcome})
        or 0.0
        for outcome in ("hit", "stale", "miss")
    }


def counted(since: dict[str, float]) -> dict[str, int]:
    now = lookups()
    return {outcome: int(now[outcome] - since[outcome]) for outcome in now}


@pytest.mark.parametrize(
    "query",
    [{**WORLD, "destination": "world"}, {**PORT_PAIR, "destination": "NLRTM"}],
    ids=["large region pair", "port pair"],
)
def test_a_repeat_is_answered_from_the_cache_until_a_batch_counts_or_is_reverted(
    client: TestClient, settings: Settings, query: dict[str, str]
) -> None:
    """The first answer is kept; a repeat is a hit with the same bytes and tag; a batch that
    counts makes it stale, and the next answer has the batch's prices; the revert makes that
    one stale in turn, and the answer is exactly the first again."""
    before = lookups()
    first = client.get("/rates", params=query)
    repeat = client.get("/rates", params=query)
    assert counted(before) == {"hit": 1, "stale": 0, "miss": 1}
    assert repeat.content == first.content
    assert repeat.headers["ETag"] == first.headers["ETag"]
    assert repeat.headers["Cache-Control"] == "no-cache"
    assert repeat.headers["Content-Type"] == "application/json"

    applied = submit_and_apply(client, settings, csv_rows(12).encode(), CSV)
    assert applied["status"] == "succeeded"
    before = lookups()
    after_batch = client.get("/rates", params=query)
    assert counted(before) == {"hit": 0, "stale": 1, "miss": 0}
    assert after_batch.headers["ETag"] != first.headers["ETag"]
    assert after_batch.json()["rates"][-1]["count"] == first.json()["rates"][-1]["count"] + (
        12 if query["destination"] == "world" else 2
    )
    assert client.get("/rates", params=query).content == after_batch.content

    client.post(f"/batches/{applied['id']}/revert", headers=AUTH)
    before = lookups()
    reverted = client.get("/rates", params=query)
    assert counted(before) == {"hit": 0, "stale": 1, "miss": 0}
    assert reverted.content == first.content
    assert reverted.headers["ETag"] not in {first.headers["ETag"], after_batch.headers["ETag"]}


def test_the_csv_and_json_forms_of_one_question_are_kept_apart(client: TestClient) -> None:
    """One URL, two representations: a kept JSON answer never answers a CSV request."""
    query = {**PORT_PAIR, "destination": "NLRTM"}
    as_json = client.get("/rates", params=query)
    before = lookups()
    as_csv = client.get("/rates", params={**query, "format": "csv"})
    assert counted(before) == {"hit": 0, "stale": 0, "miss": 1}
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    assert as_csv.text.startswith("day,price,count\n")
    assert as_csv.headers["ETag"] == as_json.headers["ETag"].removesuffix('"') + '-csv"'

    before = lookups()
    again = client.get("/rates", params={**query, "format": "csv"})
    assert counted(before) == {"hit": 1, "stale": 0, "miss": 0}
    assert again.content == as_csv.content
    assert again.headers["Content-Disposition"] == as_csv.headers["Content-Disposition"]
    assert client.get("/rates", params=query).content == as_json.content


def test_a_kept_answer_still_gets_a_304_for_its_tag(client: TestClient) -> None:
    """If-None-Match is answered before the cache, with no body."""
    query = {**WORLD, "destination": "world"}
    etag = client.get("/rates", params=query).headers["ETag"]
    unchanged = client.get("/rates", params=query, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == etag


def test_with_the_cache_off_every_answer_is_read_anew(settings: Settings) -> None:
    """RATES_ANSWER_CACHE_MB=0: nothing is kept, and repeats are plain misses."""
    off = settings.model_copy(update={"answer_cache_mb": 0})
    query = {**WORLD, "destination": "world"}
    with TestClient(create_app(off)) as client:
        before = lookups()
        answers = [client.get("/rates", params=query).content for _ in range(3)]
        assert counted(before) == {"hit": 0, "stale": 0, "miss": 3}
        assert len(set(answers)) == 1
        assert len(client.app.state.answers) == 0  # type: ignore[attr-defined]
