"""S3 storage, `rates ingest register` and the Lambda handlers against moto's S3 server."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import httpx2 as httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict

from rates.api.app import create_app
from rates.db.connection import connect
from rates.devstack import free_port
from rates.ingest import batches as batch_sql
from rates.ingest import lambda_handler
from rates.ingest.submit import register_s3_object
from rates.ingest.sweep import delete, orphans
from rates.settings import Settings
from rates.storage import PayloadStore
from tests.ingest_helpers import (
    AUTH,
    apply_all,
    csv_rows,
    ingest_settings,
    prices_of_batch,
    seed_ports,
)

BUCKET = "rates-batches"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's standalone server, spoken to over HTTP like any S3-compatible store."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{endpoint}/moto-api/")
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    yield endpoint
    process.terminate()
    process.wait()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    yield client
    listing = client.list_object_versions(Bucket=BUCKET)
    for obj in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"], VersionId=obj["VersionId"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, moto_endpoint: str) -> Settings:
    seed_ports(database_url)
    return ingest_settings(
        database_url,
        tmp_path / "local",
        storage_s3_bucket=BUCKET,
        storage_s3_prefix="incoming",
        storage_s3_endpoint_url=moto_endpoint,
    )


def upload(client: TestClient, rows: str) -> httpx.Response:
    """POST /batches of a CSV, as a client with the ingest token."""
    return client.post(
        "/batches", content=rows.encode(), headers={**AUTH, "Content-Type": "text/csv"}
    )


def test_uploads_are_stored_in_s3_and_applied_from_there(settings: Settings, s3) -> None:  # type: ignore[no-untyped-def]
    """With a bucket configured the payload lands under the prefix and the worker reads it."""
    with TestClient(create_app(settings)) as client:
        response = upload(client, csv_rows(12))
        assert response.status_code == 202
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert len(keys) == 1 and keys[0].startswith("incoming/") and keys[0].endswith(".csv")
        assert not list((settings.payload_dir() / "incoming").glob("*")), "spool file left over"
        apply_all(settings)
        batch = client.get(response.headers["Location"], headers=AUTH).json()
    assert batch["status"] == "succeeded"
    assert prices_of_batch(settings.conninfo() or "", batch["id"]) == 12


def test_object_created_events_register_each_object_once(
    settings: Settings,
    s3,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """The Lambda handler queues an uploaded object; a redelivered event does not duplicate it."""
    s3.put_object(
        Bucket=BUCKET, Key="drop/feb prices.csv.gz", Body=gzip.compress(csv_rows(8).encode())
    )
    # As in AWS: the database by parts, its password only in Secrets Manager.
    parts = conninfo_to_dict(settings.conninfo() or "")
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"rates-db-{parts['dbname']}", SecretString=json.dumps({"password": parts["password"]})
    )
    for name, value in {
        "RATES_DB_HOST": parts["host"],
        "RATES_DB_PORT": parts["port"],
        "RATES_DB_NAME": parts["dbname"],
        "RATES_DB_USER": parts["user"],
        "RATES_DB_PASSWORD_SECRET_ARN": secret["ARN"],
        "RATES_STORAGE_S3_ENDPOINT_URL": s3.meta.endpoint_url,
    }.items():
        monkeypatch.setenv(name, str(value))
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": "drop/feb+prices.csv.gz"}},
            }
        ]
    }
    first = lambda_handler.handle(event)
    again = lambda_handler.handle(event)
    assert first["batches"][0]["created"] is True
    assert again["batches"] == [{**first["batches"][0], "created": False}]
    apply_all(settings)
    batch_id = first["batches"][0]["batch_id"]
    assert prices_of_batch(settings.conninfo() or "", batch_id) == 8

    monkeypatch.setenv("RATES_ENVIRONMENT", "staging")
    depth = lambda_handler.report_queue_depth()
    assert depth == {"IngestQueuedBatches": 0.0, "IngestOldestQueuedAgeSeconds": 0.0}
    metrics = boto3.client("cloudwatch").list_metrics(Namespace="Rates")["Metrics"]
    assert {m["MetricName"] for m in metrics} >= {"IngestQueuedBatches"}
    for metric in metrics:
        assert metric["Dimensions"] == [{"Name": "Environment", "Value": "staging"}], metric


def object_created(key: str, version_id: str | None = None) -> dict[str, Any]:
    """An S3 "object created" event for one object, as S3 delivers it (the key URL-encoded)."""
    obj: dict[str, Any] = {"key": quote_plus(key)}
    if version_id is not None:
        obj["versionId"] = version_id
    return {
        "Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": BUCKET}, "object": obj}}
        ]
    }


def lambda_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingest Lambda's settings: the database and the store, from the environment."""
    monkeypatch.setenv("RATES_DATABASE_URL", settings.conninfo() or "")
    monkeypatch.setenv("RATES_STORAGE_S3_ENDPOINT_URL", settings.storage_s3_endpoint_url or "")


def batch_rows(settings: Settings) -> list[tuple[int, str, str]]:
    with psycopg.connect(settings.conninfo() or "") as conn:
        return conn.execute(
            f"SELECT id, status, storage_uri FROM ({batch_sql.BATCH_VIEW}) AS b ORDER BY id"
        ).fetchall()


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
def test_an_uploaded_object_and_its_events_make_one_batch(
    settings: Settings,
    s3,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    versioned: bool,
) -> None:
    """An API upload, then the S3 event for the very object it stored, delivered twice: the
    handler recognises the object and returns the upload's batch, and it is applied once."""
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    with TestClient(create_app(settings)) as client:
        response = upload(client, csv_rows(12))
    assert response.status_code == 202
    uploaded = response.json()["id"]
    (stored,) = s3.list_object_versions(Bucket=BUCKET)["Versions"]
    version_id = stored["VersionId"] if versioned else None
    lambda_environment(settings, monkeypatch)
    event = object_created(stored["Key"], version_id)
    answers = [lambda_handler.handle(event), lambda_handler.handle(event)]
    assert (
        answers
        == [{"batches": [{"key": stored["Key"], "batch_id": uploaded, "created": False}]}] * 2
    )
    ((_, _, uri),) = batch_rows(settings)
    pin = f"?versionId={version_id}" if versioned else f"?etag={stored['ETag'].strip(chr(34))}"
    assert uri == f"s3://{BUCKET}/{stored['Key']}{pin}"
    apply_all(settings)
    assert batch_rows(settings) == [(uploaded, "succeeded", uri)]
    assert prices_of_batch(settings.conninfo() or "", uploaded) == 12


def test_the_worker_reads_the_registered_version(
    settings: Settings,
    s3,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An object overwritten after its event was handled: the batch holds the version the
    event named, and the new version is a batch of its own."""
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key="drop/day.csv", Body=csv_rows(8).encode())
    lambda_environment(settings, monkeypatch)
    registered = lambda_handler.handle(object_created("drop/day.csv", first["VersionId"]))
    second = s3.put_object(Bucket=BUCKET, Key="drop/day.csv", Body=csv_rows(3).encode())
    apply_all(settings)
    batch_id = registered["batches"][0]["batch_id"]
    assert prices_of_batch(settings.conninfo() or "", batch_id) == 8
    again = lambda_handler.handle(object_created("drop/day.csv", second["VersionId"]))
    assert again["batches"][0]["created"] is True
    apply_all(settings)
    assert prices_of_batch(settings.conninfo() or "", again["batches"][0]["batch_id"]) == 3


def test_an_overwritten_unversioned_object_is_not_read(
    settings: Settings,
    s3,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without versions the batch pins the ETag: other bytes under the key are refused by S3,
    and the batch ends failed instead of applying them."""
    s3.put_object(Bucket=BUCKET, Key="drop/day.csv", Body=csv_rows(8).encode())
    lambda_environment(settings, monkeypatch)
    registered = lambda_handler.handle(object_created("drop/day.csv"))
    s3.put_object(Bucket=BUCKET, Key="drop/day.csv", Body=csv_rows(3).encode())
    apply_all(settings.model_copy(update={"worker_max_attempts": 1}))
    batch_id = registered["batches"][0]["batch_id"]
    assert prices_of_batch(settings.conninfo() or "", batch_id) == 0
    with psycopg.connect(settings.conninfo() or "") as conn:
        (error,) = conn.execute(
            "SELECT error FROM batch_attempts WHERE batch_id = %s", [batch_id]
        ).fetchone()  # type: ignore[misc]
    assert "PreconditionFailed" in error or "412" in error
    assert [status for _, status, _ in batch_rows(settings)] == ["failed"]


def test_cli_register_queues_an_existing_object(settings: Settings, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`rates ingest register s3://...` queues the object; a second call finds the same batch."""
    s3.put_object(
        Bucket=BUCKET,
        Key="manual/batch.ndjson",
        Body=b'{"orig_code": "CNSGH", "dest_code": "NLRTM", "day": "2021-02-01", "price": 1234}\n',
    )
    env = {
        "RATES_DATABASE_URL": settings.conninfo() or "",
        "RATES_STORAGE_S3_ENDPOINT_URL": s3.meta.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PATH": "/usr/bin:/bin",
    }
    command = [
        sys.executable,
        "-m",
        "rates",
        "ingest",
        "register",
        f"s3://{BUCKET}/manual/batch.ndjson",
    ]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "queued" in first.stderr
    assert "already registered" in second.stderr
    bad = subprocess.run(
        [*command[:-1], f"s3://{BUCKET}/manual/batch.txt"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "cannot tell the format" in bad.stderr
    apply_all(settings)
    with psycopg.connect(settings.conninfo() or "") as conn:
        batch_id, status = conn.execute("SELECT id, status FROM batches").fetchone()  # type: ignore[misc]
    assert status == "succeeded"
    assert prices_of_batch(settings.conninfo() or "", batch_id) == 1


def test_a_rejected_s3_object_is_hashed_to_its_end(settings: Settings, s3) -> None:  # type: ignore[no-untyped-def]
    """Parsing stops at a wrong header, but the recorded sha256 is that of the whole object
    (larger than one read), as for uploads."""
    body = b"day,price\n" + b"2021-02-01,5\n" * 300_000
    s3.put_object(Bucket=BUCKET, Key="manual/wrong-header.csv", Body=body)
    with psycopg.connect(settings.conninfo() or "", autocommit=True) as conn:
        registration = register_s3_object(
            conn, PayloadStore(settings), BUCKET, "manual/wrong-header.csv", "test"
        )
    apply_all(settings)
    with psycopg.connect(settings.conninfo() or "") as conn:
        status, sha256 = conn.execute(
            "SELECT status, sha256 FROM batches WHERE id = %s", [registration.id]
        ).fetchone()  # type: ignore[misc]
    assert status == "rejected"
    assert sha256 == hashlib.sha256(body).hexdigest()


def test_db_load_reads_a_dump_from_s3(database_url: str, s3) -> None:  # type: ignore[no-untyped-def]
    """`rates db load s3://...` (the AWS import task) streams a gzip dump from the bucket."""
    dump = (
        "COPY public.regions (slug, name, parent_slug) FROM stdin;\nnorth\tNorth\t\\N\n\\.\n"
        "COPY public.ports (code, name, parent_slug) FROM stdin;\nAAAAA\tA\tnorth\n\\.\n"
    )
    s3.put_object(Bucket=BUCKET, Key="dumps/seed.sql.gz", Body=gzip.compress(dump.encode()))
    env = {
        "RATES_DATABASE_URL": database_url,
        "RATES_STORAGE_S3_ENDPOINT_URL": s3.meta.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "rates", "db", "load", f"s3://{BUCKET}/dumps/seed.sql.gz"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT code FROM ports").fetchall() == [("AAAAA",)]


def test_sweep_deletes_unreferenced_objects_under_the_prefix(settings: Settings, s3) -> None:  # type: ignore[no-untyped-def]
    """An object under the prefix that no batch references goes; the batch's own object and
    objects outside the prefix stay."""
    with TestClient(create_app(settings)) as client:
        response = upload(client, csv_rows(2))
        assert response.status_code == 202
    s3.put_object(Bucket=BUCKET, Key="incoming/orphan.csv", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="elsewhere/keep.csv", Body=b"x")
    with connect(settings, autocommit=True) as conn:
        found = orphans(settings, conn, grace_s=0)
    assert [payload.uri for payload in found] == [f"s3://{BUCKET}/incoming/orphan.csv"]
    delete(settings, found)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "incoming/orphan.csv" not in keys and "elsewhere/keep.csv" in keys
    assert len([k for k in keys if k.startswith("incoming/")]) == 1
