"""Shared by the ingestion tests: a small port world, settings, payload builders."""

from __future__ import annotations

import gzip
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

from rates.db.connection import connect
from rates.db.queries import rebuild_read_model
from rates.ingest.formats import Compression, Format
from rates.ingest.submit import accept_upload
from rates.ingest.worker import Worker
from rates.settings import Settings
from rates.storage import PayloadStore, read_chunks

PORTS = ("CNSGH", "CNGGZ", "NLRTM", "DEHAM", "NOOSL")
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ_TOKEN = "test-read-token-9876543210"


def seed_ports(database_url: str) -> None:
    """Five ports in one region, which counts as large: world-to-world rates read the
    region-pair totals, port pairs the route totals, so batches must keep both right."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO regions VALUES ('world', 'World', NULL)")
        for code in PORTS:
            conn.execute("INSERT INTO ports VALUES (%s, %s, 'world')", [code, code.title()])
        rebuild_read_model(conn, rollup_min_ports=2)


def ingest_settings(database_url: str, storage: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "ingest_tokens": TOKEN,
        "batch_read_tokens": READ_TOKEN,
        "storage_dir": storage,
        "worker_poll_interval_s": 0.2,
        "worker_retry_delay_s": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def apply_all(settings: Settings) -> None:
    """Runs a real worker until the queue is empty."""
    worker = Worker(settings, name="test-worker")
    while worker.run(once=True):
        pass


def submit_and_apply(client: TestClient, settings: Settings, body: bytes, headers: dict) -> dict:
    """Submits a batch over HTTP, applies the queue, and returns the batch as GET shows it."""
    response = client.post("/batches", content=body, headers=headers)
    assert response.status_code == 202, response.text
    apply_all(settings)
    return client.get(response.headers["Location"], headers=AUTH).json()


def csv_rows(count: int, *, day: str = "2021-02-01", start_price: int = 100) -> str:
    lines = ["orig_code,dest_code,day,price"]
    for i in range(count):
        lines.append(f"{PORTS[i % 2]},{PORTS[2 + i % 3]},{day},{start_price + i}")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: int, *, compress: bool = False) -> Path:
    """A large CSV written in chunks (not built in memory)."""
    opener = gzip.open if compress else open
    with opener(path, "wt") as out:  # type: ignore[operator]
        out.write("orig_code,dest_code,day,price\n")
        chunk = []
        for i in range(rows):
            chunk.append(
                f"{PORTS[i % 2]},{PORTS[2 + i % 3]},2021-03-{1 + i % 28:02d},{100 + i % 5000}\n"
            )
            if len(chunk) == 10_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    return path


def prices_of_batch(database_url: str, batch_id: int) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM prices WHERE batch_id = %s", [batch_id]
        ).fetchone()[0]  # type: ignore[index]


def total_prices(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM prices").fetchone()[0]  # type: ignore[index]


def queue_file(
    settings: Settings, path: Path, fmt: Format = "csv", compression: Compression = "none"
) -> int:
    """Stores and registers a file as a batch, as the API would."""
    store = PayloadStore(settings)
    spooler = store.spooler()
    with path.open("rb") as stream:
        for chunk in read_chunks(stream):
            spooler.write(chunk)
    payload = spooler.finish()
    with connect(settings, autocommit=True) as conn:
        return accept_upload(
            conn,
            store,
            payload,
            fmt=fmt,
            compression=compression,
            source="cli",
            idempotency_key=None,
        ).id
