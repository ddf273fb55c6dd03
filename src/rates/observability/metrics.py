"""Every Prometheus metric of the service, named after Prometheus' naming guide.

Labels stay low-cardinality: route templates (never raw paths), status codes, outcomes,
phases. The API runs in several gunicorn worker processes, so its metrics use
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by ``rates serve``);
the ingest worker is one process and serves its own registry on its own port.
"""

from __future__ import annotations

import functools
import os
import struct
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

_READ_ATTEMPTS = 5

# --- API ---------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter("http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DB_POOL_IN_USE = Gauge(
    "rates_db_pool_connections_in_use",
    "Database connections checked out of the API's pools",
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "rates_db_pool_requests_waiting",
    "Requests waiting for a database connection",
    multiprocess_mode="livesum",
)
ANSWER_CACHE_LOOKUPS = Counter(
    "rates_answer_cache_lookups",
    "GET /rates answers looked up in the process's answer cache: hit (answered from it), stale"
    " (kept, but of an older data version), miss (not kept)",
    ["outcome"],
)


@functools.lru_cache(maxsize=1024)
def http_request_metrics(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    """The two labelled series one kind of request counts in, looked up once per process:
    ``labels()`` takes a lock and checks its values on every call (~2 us each). Bounded,
    since a client chooses the method."""
    return (
        HTTP_REQUESTS.labels(method, route, str(status)),
        HTTP_REQUEST_DURATION.labels(method, route),
    )


@functools.cache
def answer_cache_lookups(outcome: str) -> Counter:
    """The labelled series of one outcome (three in all), looked up once per process."""
    return ANSWER_CACHE_LOOKUPS.labels(outcome)


READINESS_OK = Gauge(
    "rates_readiness_ok",
    "1 when the last readiness check reached the database, else 0",
    multiprocess_mode="livemin",
)

# --- ingest worker -----------------------------------------------------------------------------

BATCHES = Counter("rates_ingest_batches", "Batches finished, by outcome", ["outcome"])
ROWS = Counter("rates_ingest_rows", "Price rows applied by succeeded batches")
BATCH_DURATION = Histogram(
    "rates_ingest_batch_duration_seconds",
    "Time spent per phase of a batch attempt",
    ["phase"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
QUEUE = Gauge("rates_ingest_queue_batches", "Batches waiting or being applied", ["status"])
OLDEST_QUEUED_AGE = Gauge(
    "rates_ingest_oldest_queued_age_seconds", "Age of the oldest batch not yet applied"
)
LAST_SUCCESS = Gauge(
    "rates_ingest_last_success_timestamp_seconds", "Unix time the last batch succeeded"
)
WORKER_BUSY = Gauge("rates_ingest_worker_busy", "1 while this worker applies a batch")
STALE_ATTEMPTS_ENDED = Counter(
    "rates_ingest_stale_attempts_ended",
    "Attempts of hung workers (no heartbeat) whose database session this worker ended",
)
DB_UP = Gauge("rates_db_up", "1 when this worker's last database round trip succeeded")


def exposition() -> tuple[bytes, str]:
    """The text exposition of this process (or, under gunicorn, of all worker processes)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    # A worker that has just booted (e.g. after a SIGHUP) may have created its metrics file
    # but not yet sized it; prometheus_client then fails to read it. It is sized microseconds
    # later, so read again.
    for _ in range(_READ_ATTEMPTS - 1):
        try:
            return generate_latest(registry), CONTENT_TYPE_LATEST
        except struct.error:
            time.sleep(0.005)
    return generate_latest(registry), CONTENT_TYPE_LATEST
