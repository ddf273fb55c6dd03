"""Connections and pools; sessions get the API statement timeout unless they ask for none."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from rates.settings import Settings

# The pools reconnect every second (jittered) while PostgreSQL is away instead of backing off
# exponentially (1, 2, 4, 8 s ...): after a restart or failover the API must be ready again
# within seconds, and one attempt per second per pool costs the server nothing.
AttemptWithBackoff.DELAY_BACKOFF = 1.0

# A peer that vanishes (host lost, network cut) is noticed within about a minute from either
# end instead of the kernel's ~2 h: TCP keepalives after 30 s idle, then every 10 s, 3 misses.
# Until then a lost worker would keep its batch's transaction and lock.
KEEPALIVE_IDLE_S = 30
KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_COUNT = 3
# PostgreSQL 14+ also checks, every 10 s while running a statement, that the client is still
# there, and cancels the statement if not.
CLIENT_CHECK_INTERVAL_MS = 10_000
_CHECK_CLIENT = "SELECT set_config('client_connection_check_interval', %s, false)"


class DatabaseNotConfigured(RuntimeError):
    """No database settings: the command needs RATES_DATABASE_URL (or RATES_DB_HOST...)."""


def require_conninfo(settings: Settings) -> str:
    conninfo = settings.conninfo()
    if conninfo is None:
        raise DatabaseNotConfigured(
            "no database configured: set RATES_DATABASE_URL (or RATES_DB_HOST, RATES_DB_NAME, "
            "RATES_DB_USER, RATES_DB_PASSWORD), or run `rates up` for a private local PostgreSQL"
        )
    return conninfo


def _session_options(settings: Settings, statement_timeout_ms: int | None = None) -> dict[str, Any]:
    # JIT compilation costs tens of milliseconds and pays off only for long analytic queries;
    # the rates query's high row estimates would trigger it on every call. Parallel workers
    # likewise: when the rates query still read batch rows from prices, its plan turned
    # parallel once batches had tagged them and each query spent ~4 ms starting workers
    # (bench.scale: 2,000 -> 340 req/s); short queries never gain from them, and a batch or
    # roll-up should take one core from the API, not all of them.
    # TimeZone UTC: dates mixed with intervals (generate_series over days) turn into
    # timestamps in the session's zone, and in one whose clocks skip midnight (e.g.
    # America/Santiago) a day comes back as the day before.
    timeout_ms = (
        settings.db_statement_timeout_ms if statement_timeout_ms is None else statement_timeout_ms
    )
    return {
        "options": (
            f"-c statement_timeout={timeout_ms} -c jit=off -c max_parallel_workers_per_gather=0"
            " -c TimeZone=UTC"
            f" -c tcp_keepalives_idle={KEEPALIVE_IDLE_S}"
            f" -c tcp_keepalives_interval={KEEPALIVE_INTERVAL_S}"
            f" -c tcp_keepalives_count={KEEPALIVE_COUNT}"
        ),
        "application_name": "rates",
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE_S,
        "keepalives_interval": KEEPALIVE_INTERVAL_S,
        "keepalives_count": KEEPALIVE_COUNT,
    }


def check_client(conn: psycopg.Connection[Any]) -> None:
    """Turns on the server's client connection check where the server has it (14+)."""
    if conn.info.server_version >= 140000:
        conn.execute(_CHECK_CLIENT, [f"{CLIENT_CHECK_INTERVAL_MS}ms"])
        if not conn.autocommit:
            conn.commit()


async def _check_client_async(conn: psycopg.AsyncConnection[Any]) -> None:
    if conn.info.server_version >= 140000:
        await conn.execute(_CHECK_CLIENT, [f"{CLIENT_CHECK_INTERVAL_MS}ms"])


def connect(
    settings: Settings, *, autocommit: bool = False, statement_timeout_ms: int | None = None
) -> psycopg.Connection[Any]:
    """A synchronous connection, for the CLI and the ingest worker (which passes 0: a batch's
    COPY takes as long as the batch is big)."""
    conn = psycopg.connect(
        require_conninfo(settings),
        autocommit=autocommit,
        **_session_options(settings, statement_timeout_ms),
    )
    try:
        check_client(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def create_pool(settings: Settings) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    """The API's pool for /rates and readiness: on the read replica when one is configured
    (reads scale there; batch views stay on the writer). Opened by the app's lifespan."""
    return AsyncConnectionPool(
        settings.read_conninfo() or require_conninfo(settings),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_pool_timeout_s,
        kwargs={"autocommit": True, **_session_options(settings)},
        configure=_check_client_async,
        open=False,
        name="rates-api",
    )


def create_sync_pool(settings: Settings) -> ConnectionPool[psycopg.Connection[Any]]:
    """A small pool for the API's batch endpoints, which run in worker threads."""
    return ConnectionPool(
        require_conninfo(settings),
        min_size=1,
        max_size=4,
        timeout=settings.db_pool_timeout_s,
        kwargs={"autocommit": True, **_session_options(settings)},
        configure=check_client,
        open=False,
        name="rates-ingest",
        # Rarely used, so its idle connections may be stale after a database restart: test each
        # on checkout (one round trip, nothing next to an upload).
        check=ConnectionPool.check_connection,
    )
