"""HTTP client side of ``rates ingest``: upload with a progress bar, follow a batch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from rates.errors import RatesError
from rates.ingest.formats import format_of_name

TERMINAL = {"succeeded", "rejected", "failed", "reverted"}
MEDIA_TYPES = {"csv": "text/csv", "ndjson": "application/x-ndjson"}


class ApiError(RatesError):
    """The API answered with an error; its message is shown as is."""

    code = "api_error"


def _raise_for_error(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400 and not _is_json(response):
        # A proxy's or load balancer's own error page, not the API's JSON error.
        raise ApiError(f"{response.status_code}: {response.text.strip()[:200]}")
    body: dict[str, Any] = response.json() if response.content else {}
    if response.status_code >= 400:
        error = body.get("error", {})
        details = error.get("details")
        lines = [f"{response.status_code} {error.get('code')}: {error.get('message')}"]
        if isinstance(details, dict):
            lines += [
                f"  line {e['line']} {e['field']}: {e['reason']}" for e in details.get("errors", [])
            ]
        raise ApiError("\n".join(lines))
    return body


def _is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")


def _request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP call; an unreachable API becomes a one-line error, not a traceback."""
    try:
        return httpx.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise ApiError(f"cannot reach the rates API at {url}: {exc}") from None


def submit_file(
    url: str, token: str, path: Path, idempotency_key: str | None, console: Console
) -> dict[str, Any]:
    detected = format_of_name(path.name)
    if detected is None:
        raise ApiError(f"cannot tell the format of {path.name}: use .csv, .ndjson or .jsonl (.gz)")
    fmt, compression = detected
    headers = {"Authorization": f"Bearer {token}", "Content-Type": MEDIA_TYPES[fmt]}
    if compression == "gzip":
        headers["Content-Encoding"] = "gzip"
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    size = path.stat().st_size
    headers["Content-Length"] = str(size)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"uploading {path.name}", total=size)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as stream:
                while chunk := stream.read(1 << 20):
                    progress.advance(task, len(chunk))
                    yield chunk

        response = _request(
            "POST", f"{url}/batches", content=chunks(), headers=headers, timeout=600
        )
    return _raise_for_error(response)


def get_json(
    url: str, path: str, token: str, params: dict[str, str] | None = None
) -> dict[str, Any]:
    """A batch view; they need a bearer token (ingest or batch-read)."""
    headers = {"Authorization": f"Bearer {token}"}
    return _raise_for_error(
        _request("GET", f"{url}{path}", params=params, headers=headers, timeout=30)
    )


def wait_for_batch(
    url: str, token: str, batch_id: int, console: Console, poll_s: float = 0.5
) -> dict[str, Any]:
    with console.status(f"batch {batch_id}: waiting") as status:
        while True:
            batch = get_json(url, f"/batches/{batch_id}", token)
            if batch["status"] in TERMINAL:
                return batch
            status.update(f"batch {batch_id}: {batch['status']} (attempts {batch['attempts']})")
            time.sleep(poll_s)
