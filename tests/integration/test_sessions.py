"""Every connection the service opens is set up the same way, whatever the server's defaults."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from rates.db.connection import connect, create_pool, create_sync_pool
from rates.settings import Settings

SHOWN = (
    "SELECT current_setting('TimeZone'), current_setting('tcp_keepalives_idle'),"
    " current_setting('tcp_keepalives_interval'), current_setting('tcp_keepalives_count'),"
    " current_setting('client_connection_check_interval')"
)
EXPECTED = ("UTC", "30", "10", "3", "10s")


def _client_side(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> dict[str, str]:
    return {k: v for k, v in conn.info.get_parameters().items() if k.startswith("keepalives")}


def test_connections_and_both_pools_have_keepalives_utc_and_the_client_check(
    database_url: str,
) -> None:
    """The worker's and CLI's connections and both API pools run in UTC with TCP keepalives
    at both ends and the server's client connection check."""
    settings = Settings(database_url=database_url)
    client_keepalives = {
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
    }
    for autocommit in (True, False):
        with connect(settings, autocommit=autocommit) as conn:
            assert conn.execute(SHOWN).fetchone() == EXPECTED
            assert _client_side(conn).items() >= client_keepalives.items()
    with create_sync_pool(settings) as pool, pool.connection() as conn:
        assert conn.execute(SHOWN).fetchone() == EXPECTED

    async def from_the_async_pool() -> tuple[Any, ...] | None:
        async with create_pool(settings) as pool, pool.connection() as conn:
            assert _client_side(conn).items() >= client_keepalives.items()
            return await (await conn.execute(SHOWN)).fetchone()

    assert asyncio.run(from_the_async_pool()) == EXPECTED
