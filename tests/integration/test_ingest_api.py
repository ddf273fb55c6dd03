"""Batch submission, validation and application through the API and a real worker."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from rates.api.app import create_app
from rates.db.connection import connect
from rates.ingest import batches as batch_sql
from rates.ingest.worker import Worker
from rates.settings import Settings
from tests.ingest_helpers import (
    READ_TOKEN,
    TOKEN,
    apply_all,
    csv_rows,
    ingest_settings,
    prices_of_batch,
    seed_ports,
    submit_and_apply,
    total_prices,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CSV = {**AUTH, "Content-Type": "text/csv"}
NDJSON = {**AUTH, "Content-Type": "application/x-ndjson"}


def test_plain_and_quoted_csv_load_the_same_rows(client: TestClient, settings: Settings) -> None:
    """A plain CSV goes through COPY's parser in blocks, a quoted one row by row (the log
    says which); both store exactly the same prices."""
    plain = csv_rows(40)
    quoted = plain.replace("CNSGH,", '"CNSGH",')
    with capture_logs() as logs:
        first = submit_and_apply(client, settings, plain.encode(), CSV)
        second = submit_and_apply(client, settings, quoted.encode(), CSV)
    checked = [e["batch_id"] for e in logs if e["event"] == "batch_checked_row_by_row"]
    assert checked == [second["id"]]
    with connect(settings, autocommit=True) as conn:
        stored = [
            conn.execute(
                "SELECT orig_code, dest_code, day, price FROM prices WHERE batch_id = %s"
                " ORDER BY price",
                [batch["id"]],
            ).fetchall()
            for batch in (first, second)
        ]
    assert len(stored[0]) == 40 and stored[0] == stored[1]


def test_a_valid_csv_batch_is_applied_with_lineage(client: TestClient, settings: Settings) -> None:
    """202 + Location, then the worker inserts every row tagged with the batch id."""
    response = client.post("/batches", content=csv_rows(50).encode(), headers=CSV)
    assert response.status_code == 202
    batch_id = response.json()["id"]
    assert response.json() == {"id": batch_id, "status": "queued"}
    assert response.headers["Location"] == f"/batches/{batch_id}"
    assert client.get(f"/batches/{batch_id}", headers=AUTH).json()["status"] == "queued"
    apply_all(settings)
    batch = client.get(f"/batches/{batch_id}", headers=AUTH).json()
    assert batch["status"] == "succeeded"
    assert batch["rows"] == {"total": 50, "inserted": 50, "invalid": 0}
    assert set(batch["timings_s"]) == {"load", "count", "commit", "total"}
    assert all(seconds >= 0 for seconds in batch["timings_s"].values())
    assert batch["attempts"] == 1
    assert batch["submitted_at"] <= batch["started_at"] <= batch["finished_at"]
    assert batch["sha256"] and batch["bytes"] == len(csv_rows(50))
    assert prices_of_batch(settings.conninfo() or "", batch_id) == 50
    rates = client.get(
        "/rates",
        params={
            "date_from": "2021-02-01",
            "date_to": "2021-02-01",
            "origin": "CNSGH",
            "destination": "NLRTM",
        },
    ).json()["rates"]
    assert rates[0]["count"] > 0


def test_gzip_ndjson_batch_is_applied(client: TestClient, settings: Settings) -> None:
    """NDJSON with Content-Encoding: gzip goes in like CSV."""
    rows = [
        {"orig_code": "CNGGZ", "dest_code": "DEHAM", "day": "2021-02-0" + str(d), "price": 900 + d}
        for d in range(1, 8)
    ]
    body = gzip.compress(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    batch = submit_and_apply(client, settings, body, {**NDJSON, "Content-Encoding": "gzip"})
    assert batch["status"] == "succeeded"
    assert batch["rows"]["inserted"] == 7


HEADER = "orig_code,dest_code,day,price\n"
GOOD = "CNSGH,NLRTM,2021-02-01,1000\n"

# (name, body, line, field): each rejected naming that line and field, nothing inserted.
BAD_CSV = [
    ("unknown origin", HEADER + GOOD + "QQQQQ,NLRTM,2021-02-01,10\n", 3, "orig_code"),
    ("unknown destination", HEADER + "CNSGH,XXXXX,2021-02-01,10\n", 2, "dest_code"),
    ("empty origin", HEADER + ",NLRTM,2021-02-01,10\n", 2, "orig_code"),
    ("impossible date", HEADER + GOOD + GOOD + "CNSGH,NLRTM,2021-02-30,10\n", 4, "day"),
    ("not a date", HEADER + "CNSGH,NLRTM,yesterday,10\n", 2, "day"),
    ("short date", HEADER + "CNSGH,NLRTM,2021-2-1,10\n", 2, "day"),
    ("month 13", HEADER + "CNSGH,NLRTM,2021-13-01,10\n", 2, "day"),
    ("zero price", HEADER + "CNSGH,NLRTM,2021-02-01,0\n", 2, "price"),
    ("negative price", HEADER + "CNSGH,NLRTM,2021-02-01,-5\n", 2, "price"),
    ("decimal price", HEADER + "CNSGH,NLRTM,2021-02-01,10.5\n", 2, "price"),
    ("text price", HEADER + "CNSGH,NLRTM,2021-02-01,cheap\n", 2, "price"),
    ("empty price", HEADER + "CNSGH,NLRTM,2021-02-01,\n", 2, "price"),
    ("huge price", HEADER + "CNSGH,NLRTM,2021-02-01,99999999999\n", 2, "price"),
    ("missing field", HEADER + GOOD + "CNSGH,NLRTM,2021-02-01\n", 3, "price"),
    ("two fields", HEADER + "CNSGH,NLRTM\n", 2, "day"),
    ("extra field", HEADER + "CNSGH,NLRTM,2021-02-01,10,extra\n", 2, "row"),
    ("bad encoding", HEADER + GOOD, 3, "row"),  # body gets an invalid UTF-8 line appended
    ("unterminated quote", HEADER + 'CNSGH,"NLRTM,2021-02-01,10\n', 2, "row"),
    ("header only", HEADER, 1, "file"),
]
BAD_NDJSON = [
    ("not json", b'{"orig_code": "CNSGH"\n', 1, "row"),
    ("not an object", b"[1, 2, 3]\n", 1, "row"),
    (
        "missing key",
        b'{"orig_code": "CNSGH", "dest_code": "NLRTM", "day": "2021-02-01"}\n',
        1,
        "price",
    ),
    (
        "extra key",
        b'{"orig_code": "CNSGH", "dest_code": "NLRTM", "day": "2021-02-01", '
        b'"price": 5, "currency": "EUR"}\n',
        1,
        "currency",
    ),
    (
        "string price",
        b'{"orig_code": "CNSGH", "dest_code": "NLRTM", "day": "2021-02-01", "price": "5"}\n',
        1,
        "price",
    ),
    (
        "float price",
        b'{"orig_code": "CNSGH", "dest_code": "NLRTM", "day": "2021-02-01", "price": 5.5}\n',
        1,
        "price",
    ),
    (
        "numeric code",
        b'{"orig_code": 12345, "dest_code": "NLRTM", "day": "2021-02-01", "price": 5}\n',
        1,
        "orig_code",
    ),
    (
        "null day",
        b'{"orig_code": "CNSGH", "dest_code": "NLRTM", "day": null, "price": 5}\n',
        1,
        "day",
    ),
    (
        "second line bad",
        b'{"orig_code": "CNSGH", "dest_code": "NLRTM", "day": "2021-02-01", '
        b'"price": 5}\n{"orig_code": "CNSGH", "dest_code": "NOPE1", '
        b'"day": "2021-02-01", "price": 5}\n',
        2,
        "dest_code",
    ),
]


@pytest.mark.parametrize(("name", "body", "line", "field"), BAD_CSV, ids=[c[0] for c in BAD_CSV])
def test_bad_csv_is_rejected_naming_line_and_field(
    client: TestClient, settings: Settings, name: str, body: str, line: int, field: str
) -> None:
    """The whole batch is rejected, the report names the row's line and field, 0 rows added."""
    payload = body.encode() + (
        b"CNSGH,NLRTM,2021-02-01,\xff\xfe\n" if name == "bad encoding" else b""
    )
    batch = submit_and_apply(client, settings, payload, CSV)
    assert batch["status"] == "rejected"
    assert batch["report"]["errors"][0]["line"] == line
    assert batch["report"]["errors"][0]["field"] == field
    assert batch["report"]["invalid_rows"] >= 1
    assert batch["rows"]["inserted"] == 0
    assert batch["started_at"] <= batch["finished_at"]
    assert total_prices(settings.conninfo() or "") == 0


@pytest.mark.parametrize(
    ("name", "body", "line", "field"), BAD_NDJSON, ids=[c[0] for c in BAD_NDJSON]
)
def test_bad_ndjson_is_rejected_naming_line_and_field(
    client: TestClient, settings: Settings, name: str, body: bytes, line: int, field: str
) -> None:
    """NDJSON problems are reported per line and key, with nothing inserted."""
    batch = submit_and_apply(client, settings, body, NDJSON)
    assert batch["status"] == "rejected", name
    assert (batch["report"]["errors"][0]["line"], batch["report"]["errors"][0]["field"]) == (
        line,
        field,
    )
    assert total_prices(settings.conninfo() or "") == 0


def test_report_counts_every_invalid_row_but_lists_the_first_hundred(
    client: TestClient, settings: Settings
) -> None:
    """150 bad rows among good ones: invalid_rows 150, 100 errors listed in line order."""
    lines = [HEADER.strip()]
    for i in range(300):
        lines.append(f"CNSGH,NLRTM,2021-02-01,{'bad' if i % 2 else 100 + i}")
    batch = submit_and_apply(client, settings, ("\n".join(lines) + "\n").encode(), CSV)
    report = batch["report"]
    assert report["invalid_rows"] == 150
    assert len(report["errors"]) == 100
    assert [e["line"] for e in report["errors"]][:3] == [3, 5, 7]
    assert report["truncated"] is True
    assert total_prices(settings.conninfo() or "") == 0


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        (b"day,price\n2021-01-01,5\n", CSV, 400, "header"),
        (b"", CSV, 400, "file"),
        (b"not gzip", {**CSV, "Content-Encoding": "gzip"}, 400, "file"),
    ],
)
def test_input_refused_before_storing_gets_the_same_report(
    client: TestClient, settings: Settings, body: bytes, headers: dict, status: int, field: str
) -> None:
    """A wrong header or empty body is answered at once with a row report; nothing is queued."""
    response = client.post("/batches", content=body, headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["details"]["errors"][0] == {"line": 1, "field": field, "reason": error["message"]}
    assert client.get("/batches", headers=AUTH).json() == {"batches": []}
    assert not any((settings.payload_dir()).glob("*-batch*"))
    assert not any((settings.payload_dir() / "incoming").glob("*"))


def test_a_quoted_csv_header_is_accepted_at_upload_as_by_the_worker(
    client: TestClient, settings: Settings
) -> None:
    """The upload check parses the header as CSV, as the worker does, so quotes are fine."""
    body = csv_rows(3).replace(HEADER, '"orig_code","dest_code","day","price"\n', 1)
    assert submit_and_apply(client, settings, body.encode(), CSV)["status"] == "succeeded"


def test_unsupported_media_type_and_size_limit(database_url: str, tmp_path: Path) -> None:
    """415 for an unknown Content-Type; 413 past the limit, declared or streamed."""
    seed_ports(database_url)
    settings = ingest_settings(database_url, tmp_path / "s", max_batch_bytes=100)
    with TestClient(create_app(settings)) as client:
        wrong = client.post("/batches", content=b"x", headers={**AUTH, "Content-Type": "text/xml"})
        assert wrong.status_code == 415
        big = csv_rows(20).encode()
        assert client.post("/batches", content=big, headers=CSV).status_code == 413

        def stream() -> Iterator[bytes]:
            yield big[:60]
            yield big[60:]

        streamed = client.post("/batches", content=stream(), headers=CSV)
        assert streamed.status_code == 413
        assert streamed.json()["error"]["code"] == "payload_too_large"
        assert client.get("/batches", headers=AUTH).json() == {"batches": []}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer "])
def test_submitting_needs_a_valid_bearer_token(
    client: TestClient, authorization: str | None
) -> None:
    """401 without a valid token, for submitting and for the batch views alike."""
    headers = {"Content-Type": "text/csv"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = client.post("/batches", content=csv_rows(1).encode(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    for path in ("/batches", "/batches/1", "/batches?limit=1000"):
        assert client.get(path, headers=headers).status_code == 401
    assert client.get("/batches", headers=AUTH).status_code == 200


def test_a_read_token_reads_batches_but_cannot_submit_or_revert(
    client: TestClient, settings: Settings
) -> None:
    """RATES_BATCH_READ_TOKENS see the batch views; submitting and reverting answer 403."""
    read = {"Authorization": f"Bearer {READ_TOKEN}"}
    batch_id = client.post("/batches", content=csv_rows(3).encode(), headers=CSV).json()["id"]
    assert client.get(f"/batches/{batch_id}", headers=read).json()["status"] == "queued"
    assert [b["id"] for b in client.get("/batches", headers=read).json()["batches"]] == [batch_id]
    refused = client.post("/batches", content=csv_rows(1).encode(), headers={**CSV, **read})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert client.delete(f"/batches/{batch_id}", headers=read).status_code == 403


def test_idempotency_key_returns_the_same_batch_and_409_on_other_payload(
    client: TestClient, settings: Settings
) -> None:
    """Same key + same payload: 200 with the same batch; same key + other payload: 409."""
    headers = {**CSV, "Idempotency-Key": "upload-2021-02-01"}
    first = client.post("/batches", content=csv_rows(5).encode(), headers=headers)
    again = client.post("/batches", content=csv_rows(5).encode(), headers=headers)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert not any((settings.payload_dir() / "incoming").glob("*"))  # the replay's copy is gone
    other = client.post("/batches", content=csv_rows(6).encode(), headers=headers)
    assert other.status_code == 409
    apply_all(settings)
    assert total_prices(settings.conninfo() or "") == 5
    assert len(client.get("/batches", headers=AUTH).json()["batches"]) == 1


def test_revert_removes_exactly_the_batch_rows(client: TestClient, settings: Settings) -> None:
    """Reverting a succeeded batch deletes its rows only; a second revert is 409."""
    keep = submit_and_apply(client, settings, csv_rows(7).encode(), CSV)
    drop = submit_and_apply(client, settings, csv_rows(9, start_price=500).encode(), CSV)
    assert client.post(f"/batches/{drop['id']}/revert").status_code == 401
    response = client.post(f"/batches/{drop['id']}/revert", headers=AUTH)
    assert response.json() == {"id": drop["id"], "status": "reverted", "rows_deleted": 9}
    assert client.get(f"/batches/{drop['id']}", headers=AUTH).json()["status"] == "reverted"
    assert total_prices(settings.conninfo() or "") == 7
    assert prices_of_batch(settings.conninfo() or "", keep["id"]) == 7
    assert client.delete(f"/batches/{drop['id']}", headers=AUTH).status_code == 409
    assert client.delete("/batches/999999", headers=AUTH).status_code == 404


def test_list_filters_by_status_newest_first(client: TestClient, settings: Settings) -> None:
    """GET /batches lists recent first and filters by status; a bad status is 400."""
    good = submit_and_apply(client, settings, csv_rows(2).encode(), CSV)
    bad = submit_and_apply(client, settings, (HEADER + "A,B,C,D\n").encode(), CSV)
    listed = client.get("/batches", headers=AUTH).json()["batches"]
    assert [b["id"] for b in listed] == [bad["id"], good["id"]]
    rejected = client.get("/batches", params={"status": "rejected"}, headers=AUTH).json()["batches"]
    assert [b["id"] for b in rejected] == [bad["id"]]
    assert client.get("/batches", params={"status": "weird"}, headers=AUTH).status_code == 400
    assert client.get("/batches/424242", headers=AUTH).status_code == 404


def test_a_batch_that_keeps_failing_ends_failed(client: TestClient, settings: Settings) -> None:
    """A payload gone from storage fails each attempt and ends failed after the limit."""
    response = client.post("/batches", content=csv_rows(3).encode(), headers=CSV)
    for stored in settings.payload_dir().glob("*-batch.csv"):
        stored.unlink()
    apply_all(settings)
    batch = client.get(response.headers["Location"], headers=AUTH).json()
    assert batch["status"] == "failed"
    assert batch["attempts"] == settings.worker_max_attempts
    assert "gave up" in batch["report"]["message"]
    assert all(a["outcome"] == "error" for a in batch["attempt_log"])


def test_the_api_statement_timeout_does_not_cut_a_long_batch(
    database_url: str, tmp_path: Path
) -> None:
    """RATES_DB_STATEMENT_TIMEOUT_MS guards API queries, never the worker's COPY."""
    seed_ports(database_url)
    settings = ingest_settings(database_url, tmp_path / "s", db_statement_timeout_ms=300)
    with TestClient(create_app(settings)) as client:
        body = csv_rows(300_000).encode()
        response = client.post("/batches", content=body, headers=CSV)
        assert response.status_code == 202
        apply_all(settings)
    assert prices_of_batch(database_url, response.json()["id"]) == 300_000


COUNTED_PRICES = """
SELECT orig_code, dest_code, day, price FROM prices
WHERE batch_id IS NULL OR batch_id IN (SELECT id FROM batches WHERE status = 'succeeded')
"""
ROUTE_DAYS_DRIFT = f"""
SELECT count(*) FROM (
    SELECT orig_code, dest_code, day, sum(price) AS total, count(*) AS prices
    FROM ({COUNTED_PRICES}) AS p
    GROUP BY 1, 2, 3
) AS expected
FULL JOIN (
    SELECT orig_code, dest_code, day, sum(total) AS total, sum(prices) AS prices
    FROM route_days GROUP BY 1, 2, 3  -- a batch's appended rows and the merged row
) AS actual USING (orig_code, dest_code, day)
WHERE expected.total IS DISTINCT FROM actual.total
   OR expected.prices IS DISTINCT FROM actual.prices
"""
REGION_DAYS_DRIFT = f"""
SELECT count(*) FROM (
    SELECT o.region AS orig_region, d.region AS dest_region, p.day,
           sum(price) AS total, count(*) AS prices
    FROM ({COUNTED_PRICES}) AS p
    JOIN port_rollups AS o ON o.port = p.orig_code
    JOIN port_rollups AS d ON d.port = p.dest_code
    GROUP BY 1, 2, 3
) AS expected
FULL JOIN region_days AS actual USING (orig_region, dest_region, day)
WHERE expected.total IS DISTINCT FROM actual.total
   OR expected.prices IS DISTINCT FROM actual.prices
"""


def drift(settings: Settings) -> int:
    """Route-days and region-pair days that differ from a recomputation over the counted
    prices (0 when every total is exact)."""
    with connect(settings, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM port_rollups").fetchone()[0] > 0  # type: ignore[index]
        return sum(
            conn.execute(statement).fetchone()[0]  # type: ignore[index]
            for statement in (ROUTE_DAYS_DRIFT, REGION_DAYS_DRIFT)
        )


def _succeeded_metrics() -> tuple[float, float]:
    """This process's succeeded-batch and applied-row counters (the worker's /metrics)."""
    batches = REGISTRY.get_sample_value("rates_ingest_batches_total", {"outcome": "succeeded"})
    rows = REGISTRY.get_sample_value("rates_ingest_rows_total")
    return batches or 0.0, rows or 0.0


WORLD = {"date_from": "2021-02-01", "date_to": "2021-02-01", "origin": "world"}


def test_a_batch_counts_at_its_commit_and_reverts_exactly(
    client: TestClient, settings: Settings
) -> None:
    """The transaction that applies a batch also adds it to the route and region-pair totals:
    succeeded and counted together (metrics too); reverts subtract exactly what each added,
    and leave no empty total behind."""
    world = {**WORLD, "destination": "world"}
    lane = {**WORLD, "origin": "CNSGH", "destination": "NLRTM"}
    counted = _succeeded_metrics()
    base = submit_and_apply(client, settings, csv_rows(30).encode(), CSV)
    assert base["status"] == "succeeded" and base["finished_at"] is not None
    assert _succeeded_metrics() == (counted[0] + 1, counted[1] + 30)
    assert client.get("/rates", params=world).json()["rates"][0]["count"] == 30
    assert drift(settings) == 0

    second = submit_and_apply(client, settings, csv_rows(12, start_price=5000).encode(), CSV)
    assert client.get("/rates", params=world).json()["rates"][0]["count"] == 42
    assert client.get("/rates", params=lane).json()["rates"][0]["count"] == 5 + 2
    assert drift(settings) == 0

    assert client.post(f"/batches/{base['id']}/revert", headers=AUTH).status_code == 200
    assert client.get("/rates", params=world).json()["rates"][0]["count"] == 12
    assert drift(settings) == 0
    client.post(f"/batches/{second['id']}/revert", headers=AUTH)
    assert client.get("/rates", params=world).json()["rates"][0] == {
        "day": "2021-02-01",
        "price": None,
        "count": 0,
    }
    with connect(settings, autocommit=True) as conn:
        left = conn.execute(
            "SELECT (SELECT count(*) FROM route_days) + (SELECT count(*) FROM region_days)"
        ).fetchone()[0]  # type: ignore[index]
    assert left == 0


def test_a_batch_an_older_worker_committed_is_rolled_up(
    client: TestClient, settings: Settings
) -> None:
    """Batches committed by the previous version without their totals (it added them in a
    later transaction) are counted by the next worker pass, route and region totals alike."""
    submit_and_apply(client, settings, csv_rows(6, day="2021-02-03").encode(), CSV)
    with connect(settings, autocommit=True) as conn:
        (legacy,) = conn.execute(
            "INSERT INTO batches (status, format, storage_uri, bytes, source, rows_inserted)"
            " VALUES ('succeeded', 'csv', 'file:///gone', 1, 'api', 10) RETURNING id"
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            "INSERT INTO prices SELECT orig_code, dest_code, day + 1, price + 1, %s FROM prices",
            [legacy],
        )
        conn.execute("UPDATE batches SET rolled_up = false WHERE id = %s", [legacy])
    assert drift(settings) > 0
    assert client.get(f"/batches/{legacy}", headers=AUTH).json()["status"] == "processing"
    with connect(settings, autocommit=True) as side:
        assert Worker(settings, name="deploy").roll_up(side) == 1
    assert drift(settings) == 0
    assert client.get(f"/batches/{legacy}", headers=AUTH).json()["status"] == "succeeded"


def test_a_revert_is_not_cut_by_the_session_statement_timeout(
    client: TestClient, settings: Settings
) -> None:
    """Removing a big batch's totals can take longer than the timeout meant for short
    statements; the revert lifts it for its own transaction instead of failing."""
    batch = submit_and_apply(client, settings, csv_rows(20_000).encode(), CSV)
    with connect(settings, autocommit=True, statement_timeout_ms=1) as hurried:
        assert batch_sql.revert(hurried, batch["id"]) == 20_000
    assert drift(settings) == 0


def test_a_revert_of_a_batch_being_applied_is_409_at_once(
    client: TestClient, settings: Settings
) -> None:
    """A batch a worker holds gets 409 immediately, not a lock wait ending in 503."""
    response = client.post("/batches", content=csv_rows(5).encode(), headers=CSV)
    with connect(settings) as worker:
        batch_id = response.json()["id"]
        worker.execute(batch_sql.CLAIM)  # as a worker claims it, and marks it as applied
        worker.execute(batch_sql.MARK_PROCESSING, [batch_sql.BATCH_LOCK_SPACE, batch_id])
        started = time.monotonic()
        revert = client.post(response.headers["Location"] + "/revert", headers=AUTH)
        waited_s = time.monotonic() - started
        worker.rollback()
    assert revert.status_code == 409, revert.text
    assert "processing" in revert.json()["error"]["message"]
    assert waited_s < 1


def test_a_failed_attempt_keeps_its_batch_until_the_back_off_is_set(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """While a worker records a failed attempt no other worker can claim the batch, and once
    released it waits out the back-off (before, a second worker could retry at once and the
    first then blocked on the batch's row until that retry ended)."""
    settings = ingest_settings(database_url, tmp_path / "store", worker_retry_delay_s=60)
    response = client.post("/batches", content=csv_rows(3).encode(), headers=CSV)
    for stored in settings.payload_dir().glob("*-batch.csv"):
        stored.unlink()
    claims_meanwhile: list[object] = []

    class ProbingWorker(Worker):
        def _finish_attempt(self, side: Any, batch_id: int, *args: Any) -> None:
            with connect(self.settings, autocommit=True) as other:
                claims_meanwhile.append(other.execute(batch_sql.CLAIM).fetchone())
            super()._finish_attempt(side, batch_id, *args)

    worker = ProbingWorker(settings, name="probing")
    with (
        connect(settings, statement_timeout_ms=0) as work,
        connect(settings, autocommit=True) as side,
    ):
        outcome = worker.process_one(work, side)
    assert outcome is not None and outcome.status == "error"
    assert claims_meanwhile == [None]
    with connect(settings, autocommit=True) as other:
        assert other.execute(batch_sql.CLAIM).fetchone() is None
    assert client.get(response.headers["Location"], headers=AUTH).json()["status"] == "queued"


def test_rates_carry_an_etag_that_changes_when_a_batch_counts_or_is_reverted(
    client: TestClient, settings: Settings
) -> None:
    """If-None-Match with the current ETag is 304 with no body; once a batch counts (and
    again once it is reverted) the tag changes and the full answer comes back."""
    query = {**WORLD, "destination": "world"}
    first = client.get("/rates", params=query)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    unchanged = client.get("/rates", params=query, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == etag
    assert (
        client.get("/rates", params=query, headers={"If-None-Match": '"0", *'}).status_code == 304
    )

    applied = submit_and_apply(client, settings, csv_rows(5).encode(), CSV)
    counted = client.get("/rates", params=query, headers={"If-None-Match": etag})
    assert counted.status_code == 200 and counted.json()["rates"][0]["count"] == 5
    assert counted.headers["ETag"] != etag

    client.post(f"/batches/{applied['id']}/revert", headers=AUTH)
    reverted = client.get(
        "/rates", params=query, headers={"If-None-Match": counted.headers["ETag"]}
    )
    assert reverted.status_code == 200 and reverted.json()["rates"][0]["count"] == 0
    assert reverted.headers["ETag"] not in {etag, counted.headers["ETag"]}


def test_a_405_lists_every_method_of_the_path(client: TestClient) -> None:
    """Allow names all methods a path serves, not only those of the first route tried."""
    assert client.options("/batches").headers["Allow"] == "GET, POST"
    assert client.put("/batches/1").headers["Allow"] == "DELETE, GET"


def test_an_empty_status_filter_is_a_400(client: TestClient) -> None:
    """`status=` is not one of the documented statuses: 400 naming it."""
    response = client.get("/batches", params={"status": ""}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["location"] == "query.status"


def appended_and_merged(settings: Settings) -> tuple[int, int]:
    with connect(settings, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FILTER (WHERE batch_id IS NOT NULL),"
            " count(*) FILTER (WHERE batch_id IS NULL) FROM route_days"
        ).fetchone()  # type: ignore[return-value]


def test_a_queue_that_never_empties_keeps_unmerged_batches_within_the_bound(
    client: TestClient, settings: Settings
) -> None:
    """With batches always waiting there is no idle moment to merge in: past
    worker_max_unmerged_batches the worker merges the oldest right after applying one, and
    answers stay the same as over the plain prices."""
    bounded = settings.model_copy(update={"worker_max_unmerged_batches": 2})
    world = {**WORLD, "date_to": "2021-02-10", "destination": "world"}
    days = [f"2021-02-{day:02d}" for day in range(1, 11)]
    for round_number in range(5):
        body = "".join(
            csv_rows(6, day=day, start_price=100 + round_number).partition("\n")[2] for day in days
        )
        response = client.post("/batches", content=(csv_rows(0) + body).encode(), headers=CSV)
        assert response.status_code == 202, response.text
    worker = Worker(bounded, name="busy")
    unmerged_after_each = []
    with connect(settings, autocommit=True) as side:
        while worker.run(once=True):
            unmerged_after_each.append(batch_sql.count_unmerged(side))
        merged = side.execute("SELECT id FROM batches WHERE merged ORDER BY id").fetchall()
    assert unmerged_after_each == [1, 2, 2, 2, 2]
    assert len(merged) == 3  # the three oldest
    assert drift(settings) == 0
    assert sum(d["count"] for d in client.get("/rates", params=world).json()["rates"]) == 5 * 60


def test_merging_appended_route_days_changes_no_answer_and_reverts_stay_exact(
    client: TestClient, settings: Settings
) -> None:
    """Batches append their route-days; an idle worker merges them, a chunk per transaction,
    into one row per route-day; answers are the same at every step, and a batch reverted
    before, during or after its merge is removed exactly."""
    world = {**WORLD, "date_to": "2021-02-10", "destination": "world"}
    days = [f"2021-02-{day:02d}" for day in range(1, 11)]
    body = "".join(csv_rows(6, day=day).partition("\n")[2] for day in days)
    batches = [
        submit_and_apply(client, settings, (csv_rows(0) + body).encode(), CSV)["id"]
        for _ in range(3)
    ]
    expected = client.get("/rates", params=world).json()
    assert appended_and_merged(settings) == (3 * 60, 0)
    with connect(settings, autocommit=True) as side:
        first = batch_sql.merge_some(side, rows=25)  # part of the first batch
        assert first is not None and (first.rows, first.done) == (25, False)
        assert client.get("/rates", params=world).json() == expected and drift(settings) == 0
        # Reverting the partly merged batch: its appended rows go, its merged share is
        # subtracted.
        assert client.post(f"/batches/{batches[0]}/revert", headers=AUTH).status_code == 200
        assert drift(settings) == 0
        two_thirds = client.get("/rates", params=world).json()
        assert sum(d["count"] for d in two_thirds["rates"]) == 2 * 60
        worker = Worker(settings, name="merger")
        while worker.merge_some(side):
            assert client.get("/rates", params=world).json() == two_thirds
    assert appended_and_merged(settings) == (0, 60)  # one row per route-day
    assert drift(settings) == 0
    assert client.post(f"/batches/{batches[1]}/revert", headers=AUTH).status_code == 200
    assert drift(settings) == 0
    assert sum(d["count"] for d in client.get("/rates", params=world).json()["rates"]) == 60
