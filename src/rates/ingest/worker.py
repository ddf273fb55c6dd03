"""``rates worker``: claims queued batches and applies each in one transaction.

The claim (``SELECT ... FOR NO KEY UPDATE SKIP LOCKED``), the COPY of the rows, the batch's
daily totals (what the rates query reads) and the final status commit together: a batch is
stored and counted whole or not at all, from one instant on, several workers never apply the
same batch, and a worker that dies (SIGKILL, OOM, lost host) releases its batch the moment its
connection drops, so another worker retries it with no stall timeout. Attempts are recorded on
a second, autocommit connection so they survive the rollback of a failed attempt; it also
carries the heartbeat by which a worker that hangs with its batch is found and ended
(``rates.ingest.watchdog``).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import psycopg
import structlog

from rates.db.connection import connect
from rates.ingest import batches as sql
from rates.ingest import watchdog
from rates.ingest.formats import (
    NotPlain,
    RowValidator,
    ValidationReport,
    copy_lines,
    plain_csv_copy_data,
    printable,
)
from rates.ingest.payload import PayloadProblem, PayloadReader, lines
from rates.ingest.task_protection import TaskProtection
from rates.observability import metrics
from rates.settings import Settings
from rates.storage import PayloadStore

log = structlog.get_logger(__name__)

_COPY_FLUSH_BYTES = 1 << 18
COPY_PRICES = "COPY prices (orig_code, dest_code, day, price, batch_id) FROM STDIN"
COPY_PLAIN_CSV = COPY_PRICES + " (FORMAT csv)"
# Set after the claim, before any row: rolling back to it undoes the rows, keeps the claim.
SAVE_BEFORE_ROWS = "SAVEPOINT batch_rows"
UNDO_ROWS = "ROLLBACK TO SAVEPOINT batch_rows"


class Interrupted(Exception):
    """Shutdown was requested and the grace period ran out mid-batch."""


@dataclass(frozen=True)
class ClaimedBatch:
    id: int
    format: str
    compression: str
    storage_uri: str
    sha256: str | None


@dataclass(frozen=True)
class Outcome:
    batch_id: int
    status: str  # succeeded, rejected, failed, error (retried later), interrupted
    rows: int = 0


class _HashingReader:
    """Hashes the stored bytes as they stream past (objects registered from S3 have no hash)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.sha256.update(chunk)
        return chunk


def payload_changed(batch: ClaimedBatch, sha256: str) -> Any:
    """The report of a batch whose stored payload no longer hashes to what was registered."""
    return sql.as_json(
        {
            "message": f"the stored payload's sha256 is {sha256}, not the {batch.sha256} "
            "registered when it was accepted: it changed in storage, so it is not applied",
            "storage_uri": batch.storage_uri,
        }
    )


def _undo_rows_keep_claim(work: psycopg.Connection[Any]) -> bool:
    """Rolls back to the savepoint before the batch's rows, still holding the batch, so its
    retry back-off is set before another worker can claim it; False if there is none."""
    try:
        work.execute(UNDO_ROWS)
    except psycopg.Error:
        return False
    return True


class Worker:
    def __init__(self, settings: Settings, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.store = PayloadStore(settings)
        self.protection = TaskProtection(settings.ecs_agent_uri, settings.worker_protection_minutes)
        self._stop_requested_at: float | None = None
        self._heartbeat: watchdog.Heartbeat | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop claiming; a batch in progress gets the grace period, a second call none."""
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
            log.info("worker_stopping", grace_period_s=self.settings.worker_grace_period_s)
        else:
            self._stop_requested_at = -float("inf")

    @property
    def stopping(self) -> bool:
        return self._stop_requested_at is not None

    def _check_deadline(self) -> None:
        """Gives up the batch once shutdown's grace period is over, or a watchdog ended it."""
        if self._heartbeat is not None:
            self._heartbeat.check()
        if (
            self._stop_requested_at is not None
            and time.monotonic() - self._stop_requested_at > self.settings.worker_grace_period_s
        ):
            raise Interrupted("shutdown grace period over")

    def run(self, *, once: bool = False) -> int:
        """Applies batches until stopped (or one, with ``once``); returns how many it handled.

        Losing the database is not fatal: the worker reconnects with back-off and carries on."""
        handled = 0
        backoff_s = 0.5
        while not self.stopping:
            try:
                with (
                    connect(self.settings, statement_timeout_ms=0) as work,
                    connect(self.settings, autocommit=True) as side,
                ):
                    side.execute(f"LISTEN {sql.NOTIFY_CHANNEL}")
                    log.info("worker_connected", worker=self.name)
                    backoff_s = 0.5
                    while not self.stopping:
                        self._refresh_queue_metrics(side)
                        self.roll_up(side)
                        watchdog.end_stale_attempts(
                            side, self.settings.worker_stale_after_s, self.name
                        )
                        outcome = self.process_one(work, side)
                        if outcome is not None:
                            handled += 1
                            self.protection.release()  # the batch has ended
                            self.merge_past_bound(side)
                            if once:
                                return handled
                            continue
                        if once:
                            return handled
                        if self.merge_some(side):
                            continue  # then look for a new batch again before the next step
                        self._wait_for_work(side)
            except watchdog.AttemptTakenOver:
                self.protection.release()  # the batch went back with the ended session
                metrics.WORKER_BUSY.set(0)  # reconnects at once: the database is there
            except psycopg.OperationalError as exc:
                self.protection.release()  # the batch, if any, rolled back with the connection
                metrics.DB_UP.set(0)
                metrics.WORKER_BUSY.set(0)
                log.warning("database_unreachable", error=str(exc).strip(), retry_in_s=backoff_s)
                self._sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 2.0)
        return handled

    def roll_up(self, side: psycopg.Connection[Any]) -> int:
        """Counts batches that an older worker committed without their totals (it added them
        in a later transaction of its own); returns how many. Only during a deploy from that
        version is there any."""
        rolled = 0
        while (batch := sql.roll_up_one(side)) is not None:
            self._count_success(batch.rows)
            log.info("batch_rolled_up", batch_id=batch.batch_id, worker=self.name)
            rolled += 1
        return rolled

    def merge_some(self, side: psycopg.Connection[Any]) -> bool:
        """With nothing to apply: moves one chunk of appended route-days into the merged rows,
        then rests as long as it took (half the time, leaving the database's CPU to readers);
        False when everything is merged."""
        started = time.perf_counter()
        if self._merge_chunk(side) is None:
            return False
        self._sleep(time.perf_counter() - started)
        return True

    def merge_past_bound(self, side: psycopg.Connection[Any]) -> None:
        """While more batches than ``worker_max_unmerged_batches`` are applied and not merged,
        merges the oldest, without resting: a queue that never empties leaves no idle moment
        to merge in, and every route read pays for each unmerged batch."""
        while (
            not self.stopping
            and sql.count_unmerged(side) > self.settings.worker_max_unmerged_batches
        ):
            if self._merge_chunk(side) is None:  # the rest are being merged by other workers
                return

    def _merge_chunk(self, side: psycopg.Connection[Any]) -> sql.Merged | None:
        started = time.perf_counter()
        merged = sql.merge_some(side)
        if merged is not None:
            metrics.BATCH_DURATION.labels("merge").observe(time.perf_counter() - started)
            if merged.done:
                log.info("batch_merged", batch_id=merged.batch_id, worker=self.name)
        return merged

    @staticmethod
    def _count_success(rows: int) -> None:
        metrics.BATCHES.labels("succeeded").inc()
        metrics.ROWS.inc(rows)
        metrics.LAST_SUCCESS.set(time.time())

    def _wait_for_work(self, side: psycopg.Connection[Any]) -> None:
        """Until a NOTIFY, the poll interval, or a stop request (checked every second)."""
        deadline = time.monotonic() + self.settings.worker_poll_interval_s
        while not self.stopping and (remaining := deadline - time.monotonic()) > 0:
            for _ in side.notifies(timeout=min(1.0, remaining), stop_after=1):
                return
            self._refresh_queue_metrics(side)

    def _refresh_queue_metrics(self, side: psycopg.Connection[Any]) -> None:
        queued, processing, oldest_age_s, last_success = side.execute(sql.QUEUE_METRICS).fetchone()  # type: ignore[misc]
        metrics.QUEUE.labels("queued").set(queued)
        metrics.QUEUE.labels("processing").set(processing)
        metrics.OLDEST_QUEUED_AGE.set(float(oldest_age_s))
        if last_success is not None:
            metrics.LAST_SUCCESS.set(float(last_success))
        metrics.DB_UP.set(1)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))

    # --- one batch -------------------------------------------------------------------------

    def process_one(
        self, work: psycopg.Connection[Any], side: psycopg.Connection[Any]
    ) -> Outcome | None:
        """Claims the oldest ready batch and applies it; None when the queue is empty.

        ``work`` is not in autocommit: the claim opens the transaction that the rows and the
        final status commit in (or that a failure rolls back, releasing the batch)."""
        row = work.execute(sql.CLAIM).fetchone()
        if row is None:
            work.rollback()
            return None
        batch = ClaimedBatch(*row)
        work.execute(sql.MARK_PROCESSING, [sql.BATCH_LOCK_SPACE, batch.id])
        self.protection.protect()  # until the batch ends: no scale-in or deploy stops it
        bound = log.bind(batch_id=batch.id, worker=self.name)
        side.execute(sql.CLOSE_ABANDONED_ATTEMPTS, [batch.id])
        counted = side.execute(sql.COUNTED_ATTEMPTS, [batch.id]).fetchone()[0]  # type: ignore[index]
        if counted >= self.settings.worker_max_attempts:
            report = {"message": f"gave up after {counted} attempts"}
            work.execute(sql.MARK_FAILED, {"id": batch.id, "report": sql.as_json(report)})
            work.commit()
            metrics.BATCHES.labels("failed").inc()
            bound.error("batch_failed", attempts=counted)
            return Outcome(batch.id, "failed")
        attempt = side.execute(
            sql.START_ATTEMPT,
            {"batch_id": batch.id, "worker": self.name, "backend_pid": work.info.backend_pid},
        ).fetchone()[0]  # type: ignore[index]
        bound.info("batch_started", attempt=attempt)
        interval_s = watchdog.heartbeat_interval_s(self.settings.worker_stale_after_s)
        with watchdog.Heartbeat(side, batch.id, attempt, interval_s) as self._heartbeat:
            return self._attempt(work, side, batch, attempt, bound)

    def _attempt(
        self,
        work: psycopg.Connection[Any],
        side: psycopg.Connection[Any],
        batch: ClaimedBatch,
        attempt: int,
        bound: Any,
    ) -> Outcome:
        """Applies the claimed batch under its attempt; commits, or rolls back and records why."""
        metrics.WORKER_BUSY.set(1)
        started = time.perf_counter()
        try:
            outcome = self._apply(work, batch)
            if self._heartbeat is not None:
                self._heartbeat.check()  # no commit for an attempt another worker ended
            committing = time.perf_counter()
            work.commit()
            finished = time.perf_counter()
            metrics.BATCH_DURATION.labels("commit").observe(finished - committing)
            metrics.BATCH_DURATION.labels("total").observe(finished - started)
            side.execute(
                sql.ADD_TIMING,
                {
                    "id": batch.id,
                    "timing": sql.as_json(
                        {
                            "commit": round(finished - committing, 3),
                            "total": round(finished - started, 3),
                        }
                    ),
                },
            )
        except Exception as exc:
            metrics.WORKER_BUSY.set(0)
            if work.closed or work.broken or isinstance(exc, watchdog.AttemptTakenOver):
                raise  # the session is gone: the outer loop reconnects
            status = "interrupted" if isinstance(exc, Interrupted) else "error"
            if status == "interrupted" or not _undo_rows_keep_claim(work):
                work.rollback()  # releases the batch at once
            error = printable(f"{type(exc).__name__}: {exc}")  # may quote input: no NUL in text
            self._finish_attempt(side, batch.id, attempt, status, error)
            if status == "error":
                bound.error("batch_attempt_failed", attempt=attempt, error=error)
                work.execute(
                    sql.RETRY_LATER,
                    {"id": batch.id, "delay_s": self.settings.worker_retry_delay_s * attempt},
                )
                work.commit()
            else:
                bound.warning("batch_interrupted", attempt=attempt)
            return Outcome(batch.id, status)
        metrics.WORKER_BUSY.set(0)
        if outcome.status == "succeeded":
            self._count_success(outcome.rows)
        else:
            metrics.BATCHES.labels(outcome.status).inc()
        self._finish_attempt(side, batch.id, attempt, outcome.status, None)
        bound.info("batch_finished", status=outcome.status, rows=outcome.rows)
        return outcome

    def _apply(self, work: psycopg.Connection[Any], batch: ClaimedBatch) -> Outcome:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        ports = [row[0] for row in work.execute("SELECT code FROM ports")]
        work.execute(SAVE_BEFORE_ROWS)
        loaded = self._load_plain_csv(work, batch, ports) if batch.format == "csv" else None
        if loaded is None:
            loaded = self._load_row_by_row(work, batch, ports)
        report, sha256 = loaded
        # The stored bytes are not those accepted (no hash: reading stopped at a limit).
        if sha256 is not None and batch.sha256 not in (None, sha256):
            work.execute(UNDO_ROWS)
            work.execute(
                sql.MARK_FAILED, {"id": batch.id, "report": payload_changed(batch, sha256)}
            )
            return Outcome(batch.id, "failed")
        timings["load"] = round(time.perf_counter() - started, 3)
        self._check_deadline()
        metrics.BATCH_DURATION.labels("load").observe(timings["load"])
        if not report.ok:
            work.execute(UNDO_ROWS)
            work.execute(
                sql.MARK_REJECTED,
                {
                    "id": batch.id,
                    "rows": report.rows,
                    "invalid": report.invalid_rows,
                    "timings": sql.as_json(timings),
                    "report": sql.as_json(report.to_dict()),
                    "sha256": sha256,
                },
            )
            return Outcome(batch.id, "rejected")
        counting = time.perf_counter()
        sql.add_totals(work, batch.id)
        timings["count"] = round(time.perf_counter() - counting, 3)
        metrics.BATCH_DURATION.labels("count").observe(timings["count"])
        work.execute(
            sql.MARK_SUCCEEDED,
            {
                "id": batch.id,
                "rows": report.rows,
                "timings": sql.as_json(timings),
                "sha256": sha256,
            },
        )
        return Outcome(batch.id, "succeeded", rows=report.rows)

    def _load_plain_csv(
        self, work: psycopg.Connection[Any], batch: ClaimedBatch, ports: list[str]
    ) -> tuple[ValidationReport, str | None] | None:
        """COPYs a plain CSV payload block by block; None (and the savepoint restored) if it
        is not plain or COPY finds a bad value, for the row-by-row path to load and report."""
        report = ValidationReport(max_errors=self.settings.max_reported_errors)
        try:
            with (
                self._open_payload(batch) as (stream, hashing),
                work.cursor().copy(COPY_PLAIN_CSV) as copy,
            ):
                for block in plain_csv_copy_data(
                    stream, ports, batch.id, report, self.settings.max_line_bytes
                ):
                    copy.write(block)
                    self._check_deadline()
        except (NotPlain, psycopg.errors.DataError) as exc:
            work.execute(UNDO_ROWS)
            log.info("batch_checked_row_by_row", batch_id=batch.id, reason=str(exc)[:200])
            return None
        except PayloadProblem as problem:  # a limit passed: rejected here, no second reading
            work.execute(UNDO_ROWS)
            rejected = ValidationReport(max_errors=self.settings.max_reported_errors)
            rejected.stop(problem)
            return rejected, None
        return report, hashing.sha256.hexdigest()

    def _load_row_by_row(
        self, work: psycopg.Connection[Any], batch: ClaimedBatch, ports: list[str]
    ) -> tuple[ValidationReport, str]:
        """Validates each row, COPYing them while all are valid; the report names every bad
        line and field (up to the limit)."""
        report = ValidationReport(max_errors=self.settings.max_reported_errors)
        validator = RowValidator(ports, report, batch.id)
        with (
            self._open_payload(batch) as (stream, hashing),
            work.cursor().copy(COPY_PRICES) as copy,
        ):
            buffer: list[str] = []
            size = 0
            payload_lines = lines(stream, self.settings.max_line_bytes)
            for line in copy_lines(batch.format, payload_lines, validator, report):  # type: ignore[arg-type]
                buffer.append(line)
                size += len(line)
                if size >= _COPY_FLUSH_BYTES:
                    copy.write("".join(buffer))
                    buffer.clear()
                    size = 0
                    self._check_deadline()
            if buffer and report.ok:
                copy.write("".join(buffer))
        return report, hashing.sha256.hexdigest()

    @contextmanager
    def _open_payload(self, batch: ClaimedBatch) -> Iterator[tuple[PayloadReader, _HashingReader]]:
        """The batch's payload, decompressed within the limits, hashed as it streams past;
        read to its end on the way out, so the hash covers all of it even where parsing
        stopped early (and a gzip member's trailer)."""
        with self.store.open(batch.storage_uri) as stored:
            hashing = _HashingReader(stored)
            limit = self.settings.max_batch_decompressed_bytes
            yield PayloadReader(hashing, batch.compression, limit), hashing  # type: ignore[arg-type]
            while hashing.read(1 << 20):
                pass

    def _finish_attempt(
        self,
        side: psycopg.Connection[Any],
        batch_id: int,
        attempt: int,
        outcome: str,
        error: str | None,
    ) -> None:
        side.execute(
            sql.FINISH_ATTEMPT,
            {"batch_id": batch_id, "attempt": attempt, "outcome": outcome, "error": error},
        )
