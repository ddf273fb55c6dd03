"""The watchdog's database side: heartbeats, and ending only a hung worker's session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from rates.db.queries import grant_login
from rates.ingest.batches import BATCH_LOCK_SPACE, FINISH_ATTEMPT, MARK_PROCESSING
from rates.ingest.watchdog import AttemptTakenOver, Heartbeat, end_stale_attempts
from tests.integration.test_roles import as_role

END = "SELECT rates_end_stale_attempt(%s, 1, make_interval(secs => %s), 'test-watchdog')"


def new_batch(conn: psycopg.Connection[Any]) -> int:
    return conn.execute(  # type: ignore[index]
        "INSERT INTO batches (format, storage_uri, bytes, source)"
        " VALUES ('csv', 'file:///nowhere.csv', 1, 'cli') RETURNING id"
    ).fetchone()[0]


def open_attempt(
    conn: psycopg.Connection[Any], batch_id: int, backend_pid: int, heartbeat: str | None
) -> None:
    """Attempt 1 of the batch, run by ``backend_pid``, last heard of at ``heartbeat``."""
    conn.execute(
        "INSERT INTO batch_attempts (batch_id, attempt, worker, backend_pid, backend_start,"
        " heartbeat_at) VALUES (%s, 1, 'hung:1', %s, now(), %s::timestamptz)",
        [batch_id, backend_pid, heartbeat],
    )


def attempt_row(conn: psycopg.Connection[Any], batch_id: int) -> tuple[Any, ...]:
    return conn.execute(  # type: ignore[return-value]
        "SELECT finished_at IS NOT NULL, outcome, error FROM batch_attempts"
        " WHERE batch_id = %s AND attempt = 1",
        [batch_id],
    ).fetchone()


def alive(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture
def owner(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def worker_url(database_url: str, owner: psycopg.Connection[Any]) -> str:
    """The URL of the least-privileged worker login (a member of rates_write)."""
    grant_login(owner, "rates_worker", "worker-pw-watchdog")
    return as_role(database_url, "rates_worker", "worker-pw-watchdog")


@pytest.fixture
def holder(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A session standing in for a worker's batch transaction (the owner's: a superuser here)."""
    with psycopg.connect(database_url) as conn:
        yield conn


def test_a_stale_attempt_holding_its_batch_has_its_session_ended_and_closed(
    owner: psycopg.Connection[Any], holder: psycopg.Connection[Any], worker_url: str
) -> None:
    """rates_worker cannot terminate the session itself, but through the function it ends a
    backend that holds its batch silently for too long; the attempt closes as crashed."""
    batch_id = new_batch(owner)
    holder.execute(MARK_PROCESSING, [BATCH_LOCK_SPACE, batch_id])
    open_attempt(owner, batch_id, holder.info.backend_pid, None)
    owner.execute("UPDATE batch_attempts SET heartbeat_at = now() - interval '1 minute'")
    with psycopg.connect(worker_url, autocommit=True) as worker:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            worker.execute("SELECT pg_terminate_backend(%s)", [holder.info.backend_pid])
        assert worker.execute(END, [batch_id, 30]).fetchone() == (True,)
    assert not alive(holder)
    closed, outcome, error = attempt_row(owner, batch_id)
    assert closed and outcome == "crashed"
    assert "no heartbeat for 60 s (stale after 30 s)" in error and "test-watchdog" in error


@pytest.mark.parametrize(
    ("heartbeat", "locks_batch"),
    [
        ("now()", True),  # a fresh heartbeat: the worker is alive
        (None, True),  # an older worker that sends no heartbeat
        ("2000-01-01", False),  # a stale attempt whose backend holds no batch
    ],
)
def test_the_function_refuses_a_live_worker_or_a_backend_without_the_batch(
    owner: psycopg.Connection[Any],
    holder: psycopg.Connection[Any],
    worker_url: str,
    heartbeat: str | None,
    locks_batch: bool,
) -> None:
    """No termination (false, session alive, attempt open) unless the heartbeat is stale and
    the backend holds that very batch."""
    batch_id = new_batch(owner)
    other_batch = new_batch(owner)
    holder.execute(MARK_PROCESSING, [BATCH_LOCK_SPACE, batch_id if locks_batch else other_batch])
    open_attempt(owner, batch_id, holder.info.backend_pid, heartbeat)
    with psycopg.connect(worker_url, autocommit=True) as worker:
        assert worker.execute(END, [batch_id, 5]).fetchone() == (False,)
    assert alive(holder)
    assert attempt_row(owner, batch_id) == (False, None, None)


def test_the_function_refuses_a_threshold_under_five_seconds_and_the_api_role(
    database_url: str, owner: psycopg.Connection[Any], worker_url: str
) -> None:
    """A staleness below the 5 s floor is an error, and only rates_write may call it."""
    batch_id = new_batch(owner)
    with (
        psycopg.connect(worker_url, autocommit=True) as worker,
        pytest.raises(psycopg.errors.InvalidParameterValue),
    ):
        worker.execute(END, [batch_id, 1])
    grant_login(owner, "rates_api", "api-pw-watchdog")
    api_url = as_role(database_url, "rates_api", "api-pw-watchdog")
    with (
        psycopg.connect(api_url, autocommit=True) as api,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        api.execute(END, [batch_id, 30])


def test_a_heartbeat_keeps_a_slow_attempt_alive_until_it_stops(
    database_url: str, owner: psycopg.Connection[Any], holder: psycopg.Connection[Any]
) -> None:
    """While the heartbeat runs, the watchdog leaves the attempt alone past the threshold;
    once it stops, the attempt goes stale and its session is ended."""
    batch_id = new_batch(owner)
    holder.execute(MARK_PROCESSING, [BATCH_LOCK_SPACE, batch_id])
    open_attempt(owner, batch_id, holder.info.backend_pid, None)
    with psycopg.connect(database_url, autocommit=True) as side:
        with Heartbeat(side, batch_id, 1, interval_s=0.5):
            started = time.monotonic()
            while time.monotonic() - started < 6.5:  # longer than the 5 s threshold
                assert end_stale_attempts(owner, 5, "watcher") == 0
                time.sleep(0.5)
        silent_for = owner.execute(
            "SELECT extract(epoch FROM now() - heartbeat_at) FROM batch_attempts"
            " WHERE batch_id = %s",
            [batch_id],
        ).fetchone()[0]  # type: ignore[index]
        assert silent_for < 1.5
        assert alive(holder)
        owner.execute("UPDATE batch_attempts SET heartbeat_at = now() - interval '6 seconds'")
        assert end_stale_attempts(owner, 5, "watcher") == 1
    assert not alive(holder)


def test_a_worker_whose_attempt_was_ended_learns_it_and_writes_nothing(
    database_url: str, owner: psycopg.Connection[Any], holder: psycopg.Connection[Any]
) -> None:
    """A heartbeat that finds its attempt closed makes the worker's failure AttemptTakenOver,
    and revives nothing: the attempt stays as the watchdog closed it."""
    batch_id = new_batch(owner)
    holder.execute(MARK_PROCESSING, [BATCH_LOCK_SPACE, batch_id])
    open_attempt(owner, batch_id, holder.info.backend_pid, None)
    with (
        psycopg.connect(database_url, autocommit=True) as side,
        pytest.raises(AttemptTakenOver),
        Heartbeat(side, batch_id, 1, interval_s=60),
    ):
        owner.execute("UPDATE batch_attempts SET heartbeat_at = now() - interval '1 hour'")
        assert end_stale_attempts(owner, 5, "watcher") == 1
        holder.execute("SELECT 1")  # what the worker's next statement meets
    closed, outcome, _ = attempt_row(owner, batch_id)
    assert closed and outcome == "crashed"


def test_a_failure_after_the_worker_closed_its_own_attempt_is_not_a_takeover(
    database_url: str, owner: psycopg.Connection[Any], holder: psycopg.Connection[Any]
) -> None:
    """An attempt the worker itself recorded (here as error) is not mistaken for one another
    worker ended: the original failure comes through."""
    batch_id = new_batch(owner)
    open_attempt(owner, batch_id, holder.info.backend_pid, None)
    with (
        psycopg.connect(database_url, autocommit=True) as side,
        pytest.raises(psycopg.OperationalError, match="lost on the way"),
        Heartbeat(side, batch_id, 1, interval_s=60),
    ):
        side.execute(
            FINISH_ATTEMPT,
            {"batch_id": batch_id, "attempt": 1, "outcome": "error", "error": "storage down"},
        )
        raise psycopg.OperationalError("lost on the way")
    assert attempt_row(owner, batch_id) == (True, "error", "storage down")
