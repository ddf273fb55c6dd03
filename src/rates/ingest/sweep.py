"""``rates ingest sweep``: deletes stored payloads that no batch references.

A payload is stored before its batch is registered, so a registration that fails (database
down, pool timeout, a crash in between) leaves an orphan; so does an API process killed while
spooling an upload. Only payloads older than a grace period go, so a payload whose batch is
being registered right now is never touched. Referenced payloads stay whatever their batch's
status: a batch's view names its payload.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg

from rates.settings import Settings

REFERENCED = "SELECT storage_uri FROM batches"


@dataclass(frozen=True)
class Stored:
    uri: str  # as a batch would reference it
    location: str  # the local path or the S3 key, for deleting it
    age_s: float


def _key(uri: str) -> tuple[str, str, str]:
    """A URI without query or fragment (e.g. an S3 version id): what names the object."""
    parsed = urlparse(uri)
    return parsed.scheme, parsed.netloc, parsed.path


def _files(folder: Path, now: float) -> Iterator[Stored]:
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file():
                yield Stored(path.as_uri(), str(path), now - path.stat().st_mtime)


def _s3_client(settings: Settings) -> Any:
    import boto3  # only S3 deployments pay for importing it

    return boto3.client("s3", endpoint_url=settings.storage_s3_endpoint_url)


def _objects(settings: Settings, now: float) -> Iterator[Stored]:
    bucket = settings.storage_s3_bucket
    prefix = settings.storage_s3_prefix.strip("/")
    pages = (
        _s3_client(settings)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
    )
    for page in pages:
        for obj in page.get("Contents", []):
            age_s = now - obj["LastModified"].timestamp()
            yield Stored(f"s3://{bucket}/{obj['Key']}", obj["Key"], age_s)


def orphans(settings: Settings, conn: psycopg.Connection[Any], grace_s: float) -> list[Stored]:
    """Stored payloads older than ``grace_s`` that no batch references, and spool files left
    in ``incoming/``. The listing is taken before the references, so a batch registered in
    between still counts as referencing its payload."""
    now = time.time()
    directory = settings.payload_dir().absolute()
    stored = list(_files(directory / "incoming", now))  # spool files: never referenced
    if settings.storage_s3_bucket is None:
        stored += _files(directory, now)
    else:
        stored += _objects(settings, now)
    referenced = {_key(uri) for (uri,) in conn.execute(REFERENCED)}
    return [s for s in stored if s.age_s > grace_s and _key(s.uri) not in referenced]


def delete(settings: Settings, payloads: list[Stored]) -> None:
    """Deletes the given payloads (already gone is fine)."""
    keys = []
    for payload in payloads:
        if payload.uri.startswith("file:"):
            Path(payload.location).unlink(missing_ok=True)
        else:
            keys.append({"Key": payload.location})
    for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1,000 keys
        _s3_client(settings).delete_objects(
            Bucket=settings.storage_s3_bucket, Delete={"Objects": keys[start : start + 1000]}
        )
