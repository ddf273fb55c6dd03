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


def analyze_rates_tables(conn: psycopg.Connection[Any]) -> None:
    """Refreshes planner statistics and the visibility map, which index-only scans rely on.

    VACUUM cannot run in a transaction, so this needs an autocommit connection."""
    if conn.autocommit:
        conn.execute("VACUUM (ANALYZE) regions, ports, prices")
    else:
        conn.execute("ANALYZE regions, ports, prices")


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
