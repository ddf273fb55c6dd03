"""The batch registry: every statement about batches and attempts, in one place.

A batch is ``processing`` while some session holds its advisory lock, which the worker takes
in the transaction that loads the batch's rows: a worker that dies releases it at once (a hung
one is ended by the watchdog, ``watchdog.py``), and ``pg_locks`` shows it to every role
without extra privileges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from rates.errors import RatesError
from rates.query import UNMERGED_BATCHES

NOTIFY_CHANNEL = "rates_batches"
# First key of the two-key advisory locks that mark batches being applied (ASCII "ba").
BATCH_LOCK_SPACE = 0x6261


class BatchNotFound(RatesError):
    status_code = 404
    code = "batch_not_found"


class BatchConflict(RatesError):
    status_code = 409
    code = "conflict"


@dataclass(frozen=True)
class NewBatch:
    format: str
    compression: str
    storage_uri: str
    sha256: str | None
    bytes: int
    source: str
    idempotency_key: str | None


@dataclass(frozen=True)
class Registration:
    id: int
    created: bool


REGISTER = """
INSERT INTO batches (format, compression, storage_uri, sha256, bytes, source, idempotency_key)
VALUES (%(format)s, %(compression)s, %(storage_uri)s, %(sha256)s, %(bytes)s, %(source)s,
        %(idempotency_key)s)
ON CONFLICT DO NOTHING  -- a known idempotency key, or a stored object that has its batch
RETURNING id
"""
BY_IDEMPOTENCY_KEY = "SELECT id, sha256 FROM batches WHERE idempotency_key = %s"
# The batch a registration collided with: by its idempotency key first, else by its object.
BY_KEY_OR_OBJECT = """
SELECT id, sha256 FROM batches
WHERE idempotency_key = %(idempotency_key)s OR storage_uri = %(storage_uri)s
ORDER BY (idempotency_key = %(idempotency_key)s) IS TRUE DESC
LIMIT 1
"""
NOTIFY = "SELECT pg_notify(%s, %s::text)"

# True while a worker holds batch b's advisory lock, i.e. applies it right now.
_BEING_APPLIED = f"""
EXISTS (
    SELECT FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
      AND l.classid = {BATCH_LOCK_SPACE} AND l.objid = b.id
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
"""

# The status users see: queued while a worker holds it is processing, and a succeeded batch
# counts in rates once its totals are in (at its commit; a batch an older worker committed
# without them is still processing until the next worker pass adds them).
_SHOWN_STATUS = f"""
CASE WHEN b.status = 'queued' AND {_BEING_APPLIED} THEN 'processing'
     WHEN b.status = 'succeeded' AND NOT b.rolled_up THEN 'processing'
     ELSE b.status END
"""
BATCH_VIEW = f"""
SELECT b.id,
       {_SHOWN_STATUS} AS status,
       b.format, b.compression, b.source, b.bytes, b.sha256, b.storage_uri,
       b.submitted_at, b.finished_at, b.reverted_at,
       b.rows_total, b.rows_inserted, b.rows_invalid, b.timings, b.report,
       (SELECT count(*) FROM batch_attempts a WHERE a.batch_id = b.id) AS attempts,
       (SELECT max(a.started_at) FROM batch_attempts a WHERE a.batch_id = b.id) AS started_at
FROM batches b
"""
GET_BATCH = BATCH_VIEW + "WHERE b.id = %(id)s"
LIST_BATCHES = f"""
SELECT * FROM ({BATCH_VIEW}) AS batch
WHERE %(status)s::text IS NULL OR batch.status = %(status)s
ORDER BY batch.id DESC
LIMIT %(limit)s
"""
ATTEMPTS = """
SELECT attempt, worker, started_at, finished_at, outcome, error
FROM batch_attempts WHERE batch_id = %s ORDER BY attempt
"""

SHOWN_STATUS = f"SELECT {_SHOWN_STATUS} FROM batches b WHERE b.id = %s"
LOCK_FOR_REVERT = SHOWN_STATUS + " FOR UPDATE OF b"

# --- the read model: what a batch adds to the totals the rates query reads ------------------
# A batch appends its route-days (rows tagged with its id; migration 0010) and upserts its
# region-days; a revert removes its appended rows and subtracts what was merged already. Every
# upsert runs in key order (merged route-days, then region-days, then the data version), so
# applies, merges and reverts never wait on each other in a cycle.
BATCH_TOTALS = """
CREATE TEMPORARY TABLE batch_totals ON COMMIT DROP AS
SELECT orig_code, dest_code, day, %(sign)s * sum(price) AS total, %(sign)s * count(*) AS prices
FROM prices WHERE batch_id = %(id)s
GROUP BY orig_code, dest_code, day
"""
APPEND_TO_ROUTE_DAYS = """
INSERT INTO route_days (orig_code, dest_code, day, total, prices, batch_id)
SELECT orig_code, dest_code, day, total, prices, %(id)s FROM batch_totals
ORDER BY orig_code, dest_code, day
"""
# Revert: the batch's rows still appended go; the (negated) totals of the others, merged
# already, are added to the merged rows.
REMOVE_FROM_ROUTE_DAYS = """
WITH appended AS (
    DELETE FROM route_days WHERE batch_id = %(id)s
    RETURNING orig_code, dest_code, day
)
INSERT INTO route_days AS r (orig_code, dest_code, day, total, prices)
SELECT t.orig_code, t.dest_code, t.day, t.total, t.prices FROM batch_totals AS t
WHERE NOT EXISTS (SELECT FROM appended AS a
                  WHERE a.orig_code = t.orig_code AND a.dest_code = t.dest_code
                    AND a.day = t.day)
ORDER BY t.orig_code, t.dest_code, t.day
ON CONFLICT (orig_code, dest_code, day) WHERE batch_id IS NULL
DO UPDATE SET total = r.total + excluded.total, prices = r.prices + excluded.prices
"""
# Merging: up to %(rows)s appended rows of one batch move into the merged rows, in one
# transaction; no sum changes, so readers see the same answers before and after.
CLAIM_MERGE = """
SELECT id FROM batches
WHERE status = 'succeeded' AND rolled_up AND NOT merged
ORDER BY id
LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED
"""
# How many batches readers read appended rows of: the list they read, counted.
COUNT_UNMERGED = f"SELECT cardinality({UNMERGED_BATCHES})"
MERGE_CHUNK = """
WITH moved AS (
    DELETE FROM route_days
    WHERE ctid = ANY (ARRAY(SELECT ctid FROM route_days WHERE batch_id = %(id)s LIMIT %(rows)s))
    RETURNING orig_code, dest_code, day, total, prices
)
INSERT INTO route_days AS r (orig_code, dest_code, day, total, prices)
SELECT orig_code, dest_code, day, total, prices FROM moved
ORDER BY orig_code, dest_code, day
ON CONFLICT (orig_code, dest_code, day) WHERE batch_id IS NULL
DO UPDATE SET total = r.total + excluded.total, prices = r.prices + excluded.prices
"""
MARK_MERGED = """
UPDATE batches SET merged = true
WHERE id = %(id)s AND NOT EXISTS (SELECT FROM route_days WHERE batch_id = %(id)s)
"""
ADD_ROUTES = """
INSERT INTO routes (orig_code, dest_code)
SELECT DISTINCT orig_code, dest_code FROM batch_totals
ORDER BY orig_code, dest_code
ON CONFLICT DO NOTHING
"""
ADD_TO_REGION_DAYS = """
INSERT INTO region_days AS r (orig_region, dest_region, day, total, prices)
SELECT origin.region, destination.region, t.day, sum(t.total), sum(t.prices)
FROM batch_totals AS t
JOIN port_rollups AS origin ON origin.port = t.orig_code
JOIN port_rollups AS destination ON destination.port = t.dest_code
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
ON CONFLICT (orig_region, dest_region, day)
DO UPDATE SET total = r.total + excluded.total, prices = r.prices + excluded.prices
"""
# After a revert: days left with no price at all are gone, as if never written (rows this
# transaction has locked already, so no new lock waits).
DROP_EMPTY_ROUTE_DAYS = """
DELETE FROM route_days AS r USING batch_totals AS t
WHERE r.orig_code = t.orig_code AND r.dest_code = t.dest_code AND r.day = t.day
  AND r.batch_id IS NULL AND r.prices = 0
"""
DROP_EMPTY_REGION_DAYS = """
DELETE FROM region_days AS r
USING batch_totals AS t, port_rollups AS origin, port_rollups AS destination
WHERE origin.port = t.orig_code AND destination.port = t.dest_code
  AND r.orig_region = origin.region AND r.dest_region = destination.region AND r.day = t.day
  AND r.prices = 0
"""
NEXT_DATA_VERSION = "UPDATE data_version SET version = version + 1"

# Batches an older worker committed without adding their totals (it rolled them up in a
# transaction of its own): rolled up the same way by any worker.
CLAIM_ROLL_UP = """
SELECT id FROM batches
WHERE status = 'succeeded' AND NOT rolled_up
ORDER BY id
LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED
"""
MARK_ROLLED_UP = """
UPDATE batches SET rolled_up = true, finished_at = clock_timestamp()
WHERE id = %(id)s
RETURNING rows_inserted
"""
# Phases that end after the batch's own commit are added to its timings afterwards.
ADD_TIMING = (
    "UPDATE batches SET timings = coalesce(timings, '{}'::jsonb) || %(timing)s WHERE id = %(id)s"
)
DELETE_BATCH_ROWS = "DELETE FROM prices WHERE batch_id = %s"
MARK_REVERTED = "UPDATE batches SET status = 'reverted', reverted_at = now() WHERE id = %s"

QUEUE_METRICS = f"""
SELECT count(*) FILTER (WHERE NOT processing) AS queued,
       count(*) FILTER (WHERE processing) AS processing,
       coalesce(extract(epoch FROM now() - min(submitted_at)), 0) AS oldest_age_s,
       (SELECT extract(epoch FROM max(finished_at)) FROM batches
        WHERE status = 'succeeded' AND rolled_up)
FROM (
    SELECT b.submitted_at, {_BEING_APPLIED} AS processing
    FROM batches b WHERE b.status = 'queued'
    UNION ALL
    SELECT submitted_at, true FROM batches WHERE status = 'succeeded' AND NOT rolled_up
) AS waiting
"""

# --- worker statements ---------------------------------------------------------------------

CLAIM = """
SELECT id, format, compression, storage_uri, sha256
FROM batches
WHERE status = 'queued' AND not_before <= now()
ORDER BY id
LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED
"""
MARK_PROCESSING = "SELECT pg_advisory_xact_lock(%s, %s::int)"
# NO KEY UPDATE, not UPDATE: the attempt rows the side connection inserts reference the batch
# and take KEY SHARE on it, which a plain FOR UPDATE would block (the worker against itself).
# Attempts that count towards the limit: all but those a graceful shutdown interrupted.
COUNTED_ATTEMPTS = """
SELECT count(*) FROM batch_attempts
WHERE batch_id = %s AND outcome IS DISTINCT FROM 'interrupted'
"""
# Run only by the holder of the batch's lock: an attempt still open is one whose worker died.
CLOSE_ABANDONED_ATTEMPTS = """
UPDATE batch_attempts
SET finished_at = now(), outcome = 'crashed', error = 'the worker died mid-batch'
WHERE batch_id = %s AND finished_at IS NULL
"""
START_ATTEMPT = """
INSERT INTO batch_attempts (batch_id, attempt, worker, backend_pid, backend_start, heartbeat_at)
SELECT %(batch_id)s, coalesce(max(attempt), 0) + 1, %(worker)s, %(backend_pid)s,
       (SELECT backend_start FROM pg_stat_activity WHERE pid = %(backend_pid)s), now()
FROM batch_attempts WHERE batch_id = %(batch_id)s
RETURNING attempt
"""
FINISH_ATTEMPT = """
UPDATE batch_attempts SET finished_at = now(), outcome = %(outcome)s, error = %(error)s
WHERE batch_id = %(batch_id)s AND attempt = %(attempt)s
"""
# The batch transaction's now() is its start, before the attempt began: finished_at takes the
# clock instead. Its totals are added in the same transaction: it counts from its commit.
MARK_SUCCEEDED = """
UPDATE batches
SET status = 'succeeded', rolled_up = true, finished_at = clock_timestamp(),
    rows_total = %(rows)s, rows_inserted = %(rows)s, rows_invalid = 0,
    timings = %(timings)s, sha256 = coalesce(sha256, %(sha256)s)
WHERE id = %(id)s
"""
MARK_REJECTED = """
UPDATE batches
SET status = 'rejected', finished_at = clock_timestamp(), rows_total = %(rows)s, rows_inserted = 0,
    rows_invalid = %(invalid)s, timings = %(timings)s, report = %(report)s,
    sha256 = coalesce(sha256, %(sha256)s)
WHERE id = %(id)s
"""
MARK_FAILED = """
UPDATE batches SET status = 'failed', finished_at = clock_timestamp(), report = %(report)s
WHERE id = %(id)s AND status = 'queued'
"""
RETRY_LATER = """
UPDATE batches SET not_before = now() + make_interval(secs => %(delay_s)s)
WHERE id = %(id)s AND status = 'queued'
"""


def _json_ready(row: dict[str, Any]) -> dict[str, Any]:
    """The API/CLI view of a batch row: timestamps as ISO strings, rows grouped."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": row["id"],
        "status": row["status"],
        "format": row["format"],
        "compression": row["compression"],
        "source": row["source"],
        "bytes": row["bytes"],
        "sha256": row["sha256"],
        "submitted_at": iso(row["submitted_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "reverted_at": iso(row["reverted_at"]),
        "attempts": row["attempts"],
        "rows": {
            "total": row["rows_total"],
            "inserted": row["rows_inserted"],
            "invalid": row["rows_invalid"],
        },
        "timings_s": row["timings"],
        "report": row["report"],
    }


def register(conn: psycopg.Connection[Any], batch: NewBatch) -> Registration:
    """Records a stored payload as a queued batch and wakes the workers.

    With an idempotency key already used: the same payload (same sha256, or same key for
    objects whose hash is not known yet) returns the existing batch; another payload is 409.
    A stored object that already has its batch returns that batch."""
    params = batch.__dict__
    with conn.transaction():
        row = conn.execute(REGISTER, params).fetchone()
        if row is not None:
            conn.execute(NOTIFY, [NOTIFY_CHANNEL, row[0]])
            return Registration(row[0], created=True)
        existing = conn.execute(BY_KEY_OR_OBJECT, params).fetchone()
    assert existing is not None
    return Registration(_same_payload_or_conflict(existing, batch.sha256), created=False)


def find_by_idempotency_key(
    conn: psycopg.Connection[Any], key: str, sha256: str | None
) -> int | None:
    """The batch already submitted under ``key`` (409 if its payload differs), or None."""
    existing = conn.execute(BY_IDEMPOTENCY_KEY, [key]).fetchone()
    return None if existing is None else _same_payload_or_conflict(existing, sha256)


def _same_payload_or_conflict(existing: tuple[Any, ...], sha256: str | None) -> int:
    batch_id, known_sha256 = existing
    if sha256 is not None and known_sha256 is not None and known_sha256 != sha256:
        raise BatchConflict(
            f"the Idempotency-Key was already used for batch {batch_id} with a different payload",
            details={"batch_id": batch_id},
        )
    return int(batch_id)


def get_batch(conn: psycopg.Connection[Any], batch_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(GET_BATCH, {"id": batch_id}).fetchone()
        if row is None:
            raise BatchNotFound(f"no batch {batch_id}")
        view = _json_ready(row)
        view["attempt_log"] = [
            {
                **attempt,
                "started_at": attempt["started_at"].isoformat(),
                "finished_at": attempt["finished_at"] and attempt["finished_at"].isoformat(),
            }
            for attempt in cur.execute(ATTEMPTS, [batch_id]).fetchall()
        ]
    return view


def list_batches(
    conn: psycopg.Connection[Any], status: str | None, limit: int
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(LIST_BATCHES, {"status": status, "limit": limit}).fetchall()
    return [_json_ready(row) for row in rows]


def add_totals(conn: psycopg.Connection[Any], batch_id: int, *, sign: int = 1) -> None:
    """Adds a batch's prices (``sign`` -1: removes them) to every total the rates query reads,
    in the caller's transaction: readers see the whole batch from its commit, or none of it.

    Takes as long as the batch is large, so the transaction's statements get no timeout."""
    conn.execute("SET LOCAL statement_timeout = 0")
    # Grouping a million prices: in memory rather than spilled to disk in 4 MB runs.
    conn.execute("SET LOCAL work_mem = '256MB'")
    conn.execute(BATCH_TOTALS, {"id": batch_id, "sign": sign})
    conn.execute(APPEND_TO_ROUTE_DAYS if sign > 0 else REMOVE_FROM_ROUTE_DAYS, {"id": batch_id})
    conn.execute(ADD_TO_REGION_DAYS)
    if sign > 0:
        conn.execute(ADD_ROUTES)
    else:
        conn.execute(DROP_EMPTY_ROUTE_DAYS)
        conn.execute(DROP_EMPTY_REGION_DAYS)
    conn.execute(NEXT_DATA_VERSION)


def revert(conn: psycopg.Connection[Any], batch_id: int) -> int:
    """Removes a succeeded batch's rows and totals atomically; returns how many rows.

    A batch that a worker holds (being applied) is 409 at once, not after a lock wait."""
    with conn.transaction():
        conn.execute("SET LOCAL statement_timeout = 0")  # millions of rows may take a while
        # A batch being applied holds its row until it commits: 409 at once, no lock wait.
        # Otherwise only a merge step (well under a second) may hold it.
        shown = conn.execute(SHOWN_STATUS, [batch_id]).fetchone()
        if shown is not None and shown[0] == "processing":
            raise BatchConflict(
                f"batch {batch_id} is processing; only a succeeded batch can be reverted"
            )
        conn.execute("SET LOCAL lock_timeout = '5s'")
        try:
            row = conn.execute(LOCK_FOR_REVERT, [batch_id]).fetchone()
        except psycopg.errors.LockNotAvailable:
            raise BatchConflict(
                f"batch {batch_id} is processing; only a succeeded batch can be reverted"
            ) from None
        if row is None:
            raise BatchNotFound(f"no batch {batch_id}")
        (status,) = row
        if status != "succeeded":
            raise BatchConflict(
                f"batch {batch_id} is {status}; only a succeeded batch can be reverted"
            )
        add_totals(conn, batch_id, sign=-1)
        deleted = conn.execute(DELETE_BATCH_ROWS, [batch_id]).rowcount
        conn.execute(MARK_REVERTED, [batch_id])
    return deleted


@dataclass(frozen=True)
class RolledUp:
    batch_id: int
    rows: int


def roll_up_one(conn: psycopg.Connection[Any]) -> RolledUp | None:
    """Adds the totals of the oldest batch that an older worker committed without them, in
    one transaction; which batch, or None."""
    with conn.transaction():
        row = conn.execute(CLAIM_ROLL_UP).fetchone()
        if row is None:
            return None
        add_totals(conn, row[0])
        marked = conn.execute(MARK_ROLLED_UP, {"id": row[0]}).fetchone()
    return RolledUp(batch_id=int(row[0]), rows=int(marked[0]))  # type: ignore[index]


@dataclass(frozen=True)
class Merged:
    batch_id: int
    rows: int
    done: bool  # no appended row of the batch is left


def count_unmerged(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(COUNT_UNMERGED).fetchone()
    assert row is not None  # count(*) always answers
    return int(row[0])


def merge_some(conn: psycopg.Connection[Any], rows: int = 20_000) -> Merged | None:
    """Moves up to ``rows`` appended route-days of the oldest unmerged batch into the merged
    rows, in one short transaction; None when every batch is merged."""
    with conn.transaction():
        row = conn.execute(CLAIM_MERGE).fetchone()
        if row is None:
            return None
        moved = conn.execute(MERGE_CHUNK, {"id": row[0], "rows": rows}).rowcount
        done = conn.execute(MARK_MERGED, {"id": row[0]}).rowcount == 1
    return Merged(batch_id=int(row[0]), rows=moved, done=done)


def as_json(value: Any) -> Jsonb:
    return Jsonb(value)
