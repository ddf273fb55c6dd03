"""Accepting a batch: check what can be checked before storing, store durably, then register.

Shared by the API (uploads), the CLI (``rates ingest register``) and the S3 event handler."""

from __future__ import annotations

import zlib
from typing import Any
from urllib.parse import unquote_plus

import psycopg

from rates.errors import RatesError
from rates.ingest.batches import NewBatch, Registration, find_by_idempotency_key, register
from rates.ingest.formats import (
    Compression,
    Format,
    ValidationReport,
    csv_header_line_problem,
    format_of_name,
)
from rates.storage import PayloadStore, SpooledPayload

_PEEK_BYTES = 1 << 16


class BatchRefused(RatesError):
    """The payload is refused before it is stored; ``details`` is the same report as a rejection."""

    status_code = 400
    code = "batch_refused"


class UnsupportedFormat(RatesError):
    status_code = 415
    code = "unsupported_media_type"


def refusal(line: int, field: str, reason: str) -> BatchRefused:
    report = ValidationReport(invalid_rows=1)
    report.add(line, field, reason)
    return BatchRefused(reason, details=report.to_dict())


def first_line(payload: SpooledPayload, compression: Compression) -> bytes:
    """The first line of the payload (decompressed), to refuse a wrong header up front."""
    with payload.path.open("rb") as stream:
        head = stream.read(_PEEK_BYTES)
    if compression == "gzip":
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, _PEEK_BYTES)
        except zlib.error:
            raise refusal(1, "file", "Content-Encoding is gzip but the body is not gzip") from None
    return head.split(b"\n", 1)[0].rstrip(b"\r")


def check_before_storing(payload: SpooledPayload, fmt: Format, compression: Compression) -> None:
    if payload.bytes == 0:
        raise refusal(1, "file", "the batch is empty")
    line = first_line(payload, compression)
    if fmt == "csv" and (problem := csv_header_line_problem(line)) is not None:
        raise refusal(1, "header", problem)


def accept_upload(
    conn: psycopg.Connection[Any],
    store: PayloadStore,
    payload: SpooledPayload,
    *,
    fmt: Format,
    compression: Compression,
    source: str,
    idempotency_key: str | None,
) -> Registration:
    """Refuses what is wrong at a glance, stores the payload, and registers the batch."""
    try:
        if idempotency_key is not None:
            existing = find_by_idempotency_key(conn, idempotency_key, payload.sha256)
            if existing is not None:
                payload.path.unlink(missing_ok=True)  # the first upload's copy is stored
                return Registration(existing, created=False)
        check_before_storing(payload, fmt, compression)
    except BaseException:
        payload.path.unlink(missing_ok=True)
        raise
    suffix = f".{fmt}" + (".gz" if compression == "gzip" else "")
    uri = store.put(payload, f"batch{suffix}")
    return register(
        conn,
        NewBatch(fmt, compression, uri, payload.sha256, payload.bytes, source, idempotency_key),
    )


def register_s3_object(
    conn: psycopg.Connection[Any],
    store: PayloadStore,
    bucket: str,
    key: str,
    source: str,
    version_id: str | None = None,
) -> Registration:
    """Registers one version of an object already in S3 (the current one without
    ``version_id``). The batch pins that version, so the worker reads exactly it; an object
    that already belongs to a batch (an API upload's own object, an event delivered again)
    returns that batch. Bucket + key + ETag stay the idempotency key, as before."""
    detected = format_of_name(key)
    if detected is None:
        raise UnsupportedFormat(
            f"cannot tell the format of {key!r}: name it .csv, .ndjson or .jsonl (optionally .gz)"
        )
    fmt, compression = detected
    info = store.head(f"s3://{bucket}/{key}", version_id)
    return register(
        conn,
        NewBatch(
            fmt,
            compression,
            info.uri,
            info.sha256,
            info.bytes,
            source,
            idempotency_key=f"s3://{bucket}/{key}#{info.etag}",
        ),
    )


def s3_event_objects(event: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(bucket, key, version id or None) of each ObjectCreated record; keys in events are
    URL-encoded."""
    objects = []
    for record in event.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        objects.append(
            (
                s3["bucket"]["name"],
                unquote_plus(s3["object"]["key"]),
                s3["object"].get("versionId") or None,
            )
        )
    return objects
