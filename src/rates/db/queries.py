"""Small statements shared by the loaders: emptiness checks and statistics."""

from __future__ import annotations

from typing import Any

import psycopg


def rates_tables_are_empty(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        """
        SELECT NOT EXISTS (SELECT FROM regions)
           AND NOT EXISTS (SELECT FROM ports)
           AND NOT EXISTS (SELECT FROM prices)
        """
    ).fetchone()
    return bool(row and row[0])


def rebuild_route_days(conn: psycopg.Connection[Any]) -> None:
    """Recomputes the daily route totals from prices (after a dump load or demo data); call it
    inside the transaction that wrote the prices, so no reader sees prices without totals."""
    conn.execute("TRUNCATE route_days")
    conn.execute(
        """
        INSERT INTO route_days (orig_code, dest_code, day, total, prices)
        SELECT orig_code, dest_code, day, sum(price), count(*)
        FROM prices
        WHERE batch_id IS NULL
           OR batch_id IN (SELECT id FROM batches WHERE status = 'succeeded')
        GROUP BY orig_code, dest_code, day
        ORDER BY orig_code, dest_code, day  -- each route's days side by side on disk
        """
    )
    conn.execute("TRUNCATE routes")
    conn.execute("INSERT INTO routes SELECT DISTINCT orig_code, dest_code FROM route_days")
    conn.execute("UPDATE batches SET rolled_up = true WHERE status = 'succeeded' AND NOT rolled_up")


def analyze_rates_tables(conn: psycopg.Connection[Any]) -> None:
    """Refreshes planner statistics and the visibility map, which index-only scans rely on.

    VACUUM cannot run in a transaction, so this needs an autocommit connection."""
    if conn.autocommit:
        conn.execute("VACUUM (ANALYZE) regions, ports, prices, route_days, routes")
    else:
        conn.execute("ANALYZE regions, ports, prices, route_days, routes")


# Login role -> the group role holding its privileges (created by migration 0003).
LOGIN_ROLES = {"rates_api": "rates_read", "rates_worker": "rates_write"}


def grant_login(conn: psycopg.Connection[Any], login: str, password: str) -> None:
    """Creates or updates a login role with the given password, a member of its group role."""
    from psycopg import sql

    group = LOGIN_ROLES[login]
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [login]).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(login), sql.Literal(password)
        )
    )
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login)))
