"""Hung workers: heartbeats on attempts, and ending the session of a worker that sends none.

A worker that dies releases its batch when its connection drops. One that hangs with its
connection alive (a stopped process, a wedged host that still answers TCP keepalives) would
hold its batch forever: its transaction keeps the row and advisory locks. So a worker applying a
batch stamps its attempt's heartbeat from a small thread on its autocommit side connection, and
every worker, between batches, looks for open attempts silent for longer than
``RATES_WORKER_STALE_AFTER_S``. It ends such an attempt's backend through
``rates_end_stale_attempt`` (migration 0013: terminates only a backend that still holds that
batch's lock, and closes the attempt as crashed); the batch's transaction rolls back and the
batch is claimed again. The hung worker, should it wake, finds its session gone: it cannot
commit, writes nothing, and reconnects (``AttemptTakenOver``).
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import psycopg
import structlog

from rates.observability import metrics

log = structlog.get_logger(__name__)

HEARTBEAT = """
UPDATE batch_attempts SET heartbeat_at = now()
WHERE batch_id = %(batch_id)s AND attempt = %(attempt)s AND finished_at IS NULL
"""
# Why a heartbeat found its attempt closed: a worker never closes its own attempt as crashed,
# so crashed means another worker ended it (the watchdog, or a claim after the session ended).
TAKEN_OVER = """
SELECT outcome = 'crashed' FROM batch_attempts
WHERE batch_id = %(batch_id)s AND attempt = %(attempt)s
"""
# Candidates only: the function decides, under the attempt's row lock, whether one is stale.
STALE_ATTEMPTS = """
SELECT batch_id, attempt, worker FROM batch_attempts
WHERE finished_at IS NULL AND heartbeat_at < now() - make_interval(secs => %(stale_after_s)s)
ORDER BY batch_id, attempt
"""
END_STALE_ATTEMPT = """
SELECT rates_end_stale_attempt(%(batch_id)s, %(attempt)s,
                               make_interval(secs => %(stale_after_s)s), %(ended_by)s)
"""

# A heartbeat at most this often apart: four chances to land before the attempt looks stale.
MAX_HEARTBEAT_INTERVAL_S = 10.0


def heartbeat_interval_s(stale_after_s: float) -> float:
    return min(MAX_HEARTBEAT_INTERVAL_S, stale_after_s / 4)


class AttemptTakenOver(Exception):
    """Another worker ended this attempt's database session: it held its batch without a
    heartbeat for too long. Nothing of the attempt was or can be applied."""


class Heartbeat:
    """Stamps one attempt's heartbeat every ``interval_s`` until the ``with`` block ends, from
    a daemon thread on ``side`` (psycopg connections are thread-safe, and the worker does not
    use ``side`` while it applies the batch).

    Leaving the block with an error, it tells whether the attempt was taken over, and if so
    raises ``AttemptTakenOver`` instead, so the worker neither retries nor records anything."""

    def __init__(
        self, side: psycopg.Connection[Any], batch_id: int, attempt: int, interval_s: float
    ) -> None:
        self._side = side
        self._params = {"batch_id": batch_id, "attempt": attempt}
        self._interval_s = interval_s
        self._done = threading.Event()
        self._taken_over = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{batch_id}-{attempt}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()  # the attempt was born with a heartbeat (START_ATTEMPT)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
        if exc is None or isinstance(exc, AttemptTakenOver):
            return
        try:
            self._beat()  # does the attempt still stand?
        except psycopg.Error:
            return  # the database is unreachable: the worker's own error says so
        if self._taken_over.is_set():
            raise self._taken_over_error() from exc

    def check(self) -> None:
        """Raises ``AttemptTakenOver`` once a heartbeat found the attempt closed by another
        worker: called in the load loop and before the commit."""
        if self._taken_over.is_set():
            raise self._taken_over_error()

    def _taken_over_error(self) -> AttemptTakenOver:
        log.warning("attempt_taken_over", **self._params)
        return AttemptTakenOver(
            f"attempt {self._params['attempt']} of batch {self._params['batch_id']} was ended"
            " by another worker after no heartbeat: nothing of it was applied"
        )

    def _beat(self) -> None:
        if self._side.execute(HEARTBEAT, self._params).rowcount == 0:
            taken_over = self._side.execute(TAKEN_OVER, self._params).fetchone()
            if taken_over is not None and taken_over[0]:
                self._taken_over.set()

    def _run(self) -> None:
        while not self._done.wait(self._interval_s) and not self._taken_over.is_set():
            try:
                self._beat()
            except psycopg.Error as exc:
                # The worker's own statements meet the same failure and handle it.
                log.warning("heartbeat_failed", error=str(exc).strip(), **self._params)
                return


def end_stale_attempts(side: psycopg.Connection[Any], stale_after_s: float, worker: str) -> int:
    """Ends the sessions of workers that hold a batch without a heartbeat for longer than
    ``stale_after_s``, releasing their batches; returns how many."""
    ended = 0
    candidates = side.execute(STALE_ATTEMPTS, {"stale_after_s": stale_after_s}).fetchall()
    for batch_id, attempt, stale_worker in candidates:
        params = {
            "batch_id": batch_id,
            "attempt": attempt,
            "stale_after_s": stale_after_s,
            "ended_by": worker,
        }
        try:
            row = side.execute(END_STALE_ATTEMPT, params).fetchone()
        except psycopg.errors.InsufficientPrivilege as exc:
            # The function's owner may not signal the workers' sessions (see migration 0013).
            log.error(
                "stale_worker_not_ended",
                batch_id=batch_id,
                stale_worker=stale_worker,
                error=str(exc),
            )
            continue
        if row is not None and row[0]:
            ended += 1
            metrics.STALE_ATTEMPTS_ENDED.inc()
            log.warning(
                "stale_worker_ended",
                batch_id=batch_id,
                attempt=attempt,
                stale_worker=stale_worker,
                worker=worker,
                stale_after_s=stale_after_s,
            )
    return ended
