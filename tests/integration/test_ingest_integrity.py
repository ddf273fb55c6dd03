"""A payload is applied only as it was accepted: its sha256 is checked when it is loaded."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import psycopg
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.ingest.worker import Worker
from tests.ingest_helpers import AUTH, TOKEN, csv_rows, ingest_settings, seed_ports, total_prices


def test_a_payload_changed_in_storage_fails_with_the_reason(
    database_url: str, tmp_path: Path
) -> None:
    """Stored bytes that no longer hash to the registered sha256 (valid rows, but not those
    accepted) add no row: the batch is failed at once, and its report says why."""
    seed_ports(database_url)
    settings = ingest_settings(database_url, tmp_path / "store")
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/batches",
            content=csv_rows(10).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
        )
        assert response.status_code == 202
        batch = response.json()
        with psycopg.connect(database_url) as conn:
            (uri,) = conn.execute(
                "SELECT storage_uri FROM batches WHERE id = %s", [batch["id"]]
            ).fetchone()  # type: ignore[misc]
        Path(unquote(urlparse(uri).path)).write_text(csv_rows(10, start_price=900))
        assert Worker(settings, name="integrity").run(once=True) == 1
        view = client.get(f"/batches/{batch['id']}", headers=AUTH).json()
    assert view["status"] == "failed"
    assert (
        "sha256" in view["report"]["message"] and "changed in storage" in view["report"]["message"]
    )
    assert [a["outcome"] for a in view["attempt_log"]] == ["failed"]
    assert total_prices(database_url) == 0
