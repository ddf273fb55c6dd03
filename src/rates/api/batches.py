"""Batch ingestion over HTTP: submit, status, list, revert."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from rates.api.errors import json_response
from rates.api.schemas import UNAVAILABLE, error_responses
from rates.errors import InvalidRequest, RatesError
from rates.ingest import batches
from rates.ingest.formats import CONTENT_TYPES, Compression
from rates.ingest.submit import UnsupportedFormat, accept_upload
from rates.storage import PayloadTooLarge

router = APIRouter(tags=["batches"])

# For the OpenAPI document: which operations take the bearer token (app.py names the scheme),
# and the bodies an upload takes.
_BEARER: dict[str, Any] = {"security": [{"bearer": []}]}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The batch; optionally gzip with Content-Encoding: gzip",
        "content": {
            "text/csv": {
                "schema": {"type": "string", "pattern": "^orig_code,dest_code,day,price\\r?\\n"}
            },
            "application/x-ndjson": {"schema": {"type": "string", "pattern": "\\S"}},
        },
    }
}
StatusName = Literal["queued", "processing", "succeeded", "rejected", "failed", "reverted"]


class Unauthorized(RatesError):
    status_code = 401
    code = "unauthorized"


class Forbidden(RatesError):
    status_code = 403
    code = "forbidden"


def _matches(presented: str, tokens: list[SecretStr]) -> bool:
    """Compared in constant time against every token, so timing tells nothing."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented.encode(), token.get_secret_value().encode())
    return matched


def require_token(request: Request, scope: Literal["read", "write"]) -> None:
    """A bearer token for the scope: write (submit, revert) takes a RATES_INGEST_TOKENS token;
    read (the batch views) takes one of those or of RATES_BATCH_READ_TOKENS."""
    settings = request.app.state.settings
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    if not settings.ingest_tokens and (scope == "write" or not settings.batch_read_tokens):
        raise Unauthorized(
            "batch submission is disabled: no RATES_INGEST_TOKENS configured"
            if scope == "write"
            else "batch views are disabled: no RATES_INGEST_TOKENS or RATES_BATCH_READ_TOKENS"
        )
    writes = _matches(presented, settings.ingest_tokens)
    reads = _matches(presented, settings.batch_read_tokens)
    if scheme.lower() != "bearer" or not presented or not (writes or reads):
        raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")
    if scope == "write" and not writes:
        raise Forbidden(
            "this token may only read batches; submitting and reverting need an ingest token"
        )


def _negotiate(request: Request) -> tuple[Any, Compression]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = CONTENT_TYPES.get(media_type)
    if fmt is None:
        raise UnsupportedFormat(
            f"Content-Type {media_type or '(none)'} is not supported; use text/csv or "
            "application/x-ndjson",
            details={"supported": sorted(CONTENT_TYPES)},
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnsupportedFormat(f"Content-Encoding {encoding} is not supported; use gzip")
    return fmt, "gzip" if encoding == "gzip" else "none"


_SUBMIT_RESPONSES = {
    200: {"description": "The batch already submitted with this Idempotency-Key"},
    **error_responses(
        e400="Refused before storing (e.g. wrong header), with a row report",
        e401="Missing or invalid bearer token",
        e403="A read-only token",
        e409="Idempotency-Key reused with a different payload",
        e413="Payload over RATES_MAX_BATCH_BYTES",
        e415="Unsupported Content-Type or Content-Encoding",
        e503=UNAVAILABLE,
    ),
}
_READ_RESPONSES = error_responses(
    e400="Malformed parameter",
    e401="Missing or invalid bearer token",
    e404="No such batch",
    e503=UNAVAILABLE,
)
_REVERT_RESPONSES = error_responses(
    e400="Malformed batch id",
    e401="Missing or invalid bearer token",
    e403="A read-only token",
    e404="No such batch",
    e409="The batch has not succeeded (or is already reverted)",
    e503=UNAVAILABLE,
)


@router.post(
    "/batches",
    status_code=202,
    responses=_SUBMIT_RESPONSES,
    openapi_extra={**_BEARER, **_UPLOAD_BODY},
)
async def submit_batch(request: Request) -> Response:
    """Streams the body to durable storage and queues it; 202 with the batch id, or 200 with
    the existing batch when the Idempotency-Key was seen before with the same payload."""
    require_token(request, "write")
    fmt, compression = _negotiate(request)
    settings = request.app.state.settings
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_batch_bytes:
        raise PayloadTooLarge(f"the batch exceeds the limit of {settings.max_batch_bytes} bytes")
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 200:
        raise InvalidRequest("Idempotency-Key must be 1 to 200 characters")
    store = request.app.state.store
    spooler = store.spooler()
    try:
        async for chunk in request.stream():
            spooler.write(chunk)
        payload = await run_in_threadpool(spooler.finish)
    except BaseException:
        spooler.discard()
        raise

    def register() -> batches.Registration:
        with request.app.state.ingest_pool.connection() as conn:
            return accept_upload(
                conn,
                store,
                payload,
                fmt=fmt,
                compression=compression,
                source="api",
                idempotency_key=key,
            )

    try:
        registration = await run_in_threadpool(register)
    finally:
        # Consumed when stored; on any error before that (e.g. no pool connection) it would
        # stay behind in the spool directory.
        payload.path.unlink(missing_ok=True)
    location = {"Location": f"/batches/{registration.id}"}
    if registration.created:
        return json_response({"id": registration.id, "status": "queued"}, 202, location)
    existing = await run_in_threadpool(_get, request, registration.id)
    return json_response(existing, 200, location)


def _get(request: Request, batch_id: int) -> dict[str, Any]:
    with request.app.state.ingest_pool.connection() as conn:
        return batches.get_batch(conn, batch_id)


@router.get("/batches/{batch_id}", responses=_READ_RESPONSES, openapi_extra=_BEARER)
def get_batch(request: Request, batch_id: int) -> Response:
    """Status, row counts, timings, attempts and the error report of one batch."""
    require_token(request, "read")
    return json_response(_get(request, batch_id))


@router.get("/batches", responses=_READ_RESPONSES, openapi_extra=_BEARER)
def list_batches(
    request: Request,
    status: StatusName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """Most recent first, optionally only those with one status."""
    require_token(request, "read")
    with request.app.state.ingest_pool.connection() as conn:
        return json_response({"batches": batches.list_batches(conn, status, limit)})


def _revert(request: Request, batch_id: int) -> Response:
    require_token(request, "write")
    with request.app.state.ingest_pool.connection() as conn:
        deleted = batches.revert(conn, batch_id)
    return json_response({"id": batch_id, "status": "reverted", "rows_deleted": deleted})


@router.post("/batches/{batch_id}/revert", responses=_REVERT_RESPONSES, openapi_extra=_BEARER)
def revert_batch(request: Request, batch_id: int) -> Response:
    """Removes all rows of a succeeded batch in one transaction."""
    return _revert(request, batch_id)


@router.delete("/batches/{batch_id}", responses=_REVERT_RESPONSES, openapi_extra=_BEARER)
def delete_batch(request: Request, batch_id: int) -> Response:
    """The same as POST /batches/{id}/revert."""
    return _revert(request, batch_id)
