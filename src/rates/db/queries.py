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
