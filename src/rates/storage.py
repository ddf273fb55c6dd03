"""Durable storage of accepted batch payloads: a local directory or S3 (or an S3-compatible store).

A payload is first spooled to a local temporary file while it is hashed and measured, then
handed to the store; the batch is recorded only after the store has it durably, so an
accepted batch is never lost.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote, urlparse

from rates.errors import RatesError
from rates.settings import Settings

_CHUNK_BYTES = 1 << 20


class PayloadTooLarge(RatesError):
    status_code = 413
    code = "payload_too_large"


class StorageError(RatesError):
    """The store cannot be reached or refuses the object; retrying may help."""

    status_code = 503
    code = "storage_unavailable"


@dataclass(frozen=True)
class SpooledPayload:
    path: Path
    sha256: str
    bytes: int


@dataclass(frozen=True)
class ObjectInfo:
    """One version of a stored object; ``uri`` pins it (see ``pinned_s3_uri``)."""

    uri: str
    bytes: int
    etag: str | None
    sha256: str | None  # as its uploader recorded it in the object's metadata, if any


class Spooler:
    """Writes chunks to a temporary file, hashing and counting them, refusing beyond a limit."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
        self._file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self._hash = hashlib.sha256()
        self._bytes = 0
        self._max_bytes = max_bytes

    def write(self, chunk: bytes) -> None:
        self._bytes += len(chunk)
        if self._bytes > self._max_bytes:
            raise PayloadTooLarge(f"the batch exceeds the limit of {self._max_bytes} bytes")
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> SpooledPayload:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return SpooledPayload(self.path, self._hash.hexdigest(), self._bytes)

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class PayloadStore:
    """Stores payloads in S3 when a bucket is configured, else in a local directory, and reads
    them back by URI (``file://`` or ``s3://``), whichever store wrote them."""

    def __init__(self, settings: Settings) -> None:
        self._directory = settings.payload_dir().absolute()
        self._bucket = settings.storage_s3_bucket
        self._prefix = settings.storage_s3_prefix.strip("/")
        self._endpoint_url = settings.storage_s3_endpoint_url
        self._max_bytes = settings.max_batch_bytes
        self._client: Any = None

    def spooler(self) -> Spooler:
        """A temporary file beside the local store (same filesystem: a rename makes it final)."""
        return Spooler(self._directory / "incoming", self._max_bytes)

    def put(self, payload: SpooledPayload, name: str) -> str:
        """Makes the spooled payload durable and returns its URI, which for S3 pins the version
        just written; the spool file is consumed."""
        object_name = f"{uuid.uuid4().hex}-{name}"
        if self._bucket is None:
            return self._put_local(payload, object_name)
        key = "/".join(filter(None, [self._prefix, object_name]))
        try:
            self._s3().upload_file(
                str(payload.path),
                self._bucket,
                key,
                ExtraArgs={"Metadata": {"sha256": payload.sha256}},
            )
        except Exception as exc:
            raise StorageError(f"cannot store the batch in s3://{self._bucket}: {exc}") from exc
        finally:
            payload.path.unlink(missing_ok=True)
        return self.head(f"s3://{self._bucket}/{key}").uri

    def _put_local(self, payload: SpooledPayload, object_name: str) -> str:
        target = self._directory / object_name
        os.replace(payload.path, target)
        dir_fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a crash
        finally:
            os.close(dir_fd)
        return target.as_uri()

    def head(self, uri: str, version_id: str | None = None) -> ObjectInfo:
        """Size, ETag and pinned URI of an S3 object: of ``version_id`` when given (an event
        names the version it is about), else of the current version."""
        bucket, key, _ = split_s3_uri(uri)
        try:
            info: dict[str, Any] = self._s3().head_object(
                Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {})
            )
        except Exception as exc:
            raise StorageError(f"cannot read {uri}: {exc}") from exc
        etag = str(info.get("ETag", "")).strip('"')
        version = info.get("VersionId")
        return ObjectInfo(
            pinned_s3_uri(bucket, key, version if version and version != "null" else None, etag),
            int(info["ContentLength"]),
            etag,
            info.get("Metadata", {}).get("sha256"),
        )

    @contextmanager
    def open(self, uri: str) -> Iterator[IO[bytes]]:
        """Streams a stored payload."""
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            try:
                stream = open(parsed.path, "rb")  # noqa: SIM115  # closed by the with below
            except FileNotFoundError:
                raise StorageError(f"the payload {uri} is missing from storage") from None
            with stream:
                yield stream
            return
        bucket, key, pin = split_s3_uri(uri)
        # Exactly the registered object: its version, or (unversioned buckets) its ETag, which
        # S3 checks (a 412 if the key now holds other bytes).
        pinned: dict[str, str] = {}
        if pin is not None:
            kind, value = pin
            pinned = {"VersionId": value} if kind == "versionId" else {"IfMatch": f'"{value}"'}
        try:
            body = self._s3().get_object(Bucket=bucket, Key=key, **pinned)["Body"]
        except Exception as exc:
            raise StorageError(f"cannot read {uri}: {exc}") from exc
        try:
            yield body
        finally:
            body.close()

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # only S3 deployments pay for importing it

            self._client = boto3.client("s3", endpoint_url=self._endpoint_url)
        return self._client


# A pin at the end of an S3 URI: "?versionId=<id>" or "?etag=<etag>", both percent-encoded.
_PIN = re.compile(r"\?(versionId|etag)=([A-Za-z0-9._~%-]*)$")


def pinned_s3_uri(bucket: str, key: str, version_id: str | None, etag: str) -> str:
    """``s3://bucket/key?versionId=V`` (or ``?etag=E`` for a bucket without versions): the
    identity of one stored object, as batches record it (unique among them)."""
    pin = ("versionId", version_id) if version_id else ("etag", etag)
    return f"s3://{bucket}/{key}?{pin[0]}={quote(pin[1], safe='')}"


def split_s3_uri(uri: str) -> tuple[str, str, tuple[str, str] | None]:
    """Bucket, key and the pin (kind, value) if any. The key is taken as it is, '?' and '#'
    included (both occur in object names); only a trailing pin is split off."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    pin = _PIN.search(key)
    if pin is not None:
        key = key[: pin.start()]
    if not uri.startswith("s3://") or not bucket or not key.strip("/"):
        raise StorageError(f"not an s3://bucket/key URI: {uri}")
    return bucket, key, (pin.group(1), unquote(pin.group(2))) if pin else None


def read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK_BYTES):
        yield chunk
