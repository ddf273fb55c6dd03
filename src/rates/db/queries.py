"""Small statements shared by the loaders: emptiness checks and statistics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql


def rates_tables_are_empty(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        """
        SELECT NOT EXISTS (SELECT FROM regions)
           AND NOT EXISTS (SELECT FROM ports)
           AND NOT EXISTS (SELECT FROM prices)
        """
    ).fetchone()
    return bool(row and row[0])


# Ports with each large region they lie in: a region is large when its subtree holds at least
# rollup_min_ports ports (migration 0009 says why).
REBUILD_PORT_ROLLUPS = """
INSERT INTO port_rollups (port, region)
WITH RECURSIVE ancestry AS (
    SELECT code AS port, parent_slug AS region FROM ports
    UNION ALL
    SELECT ancestry.port, regions.parent_slug
    FROM ancestry JOIN regions ON regions.slug = ancestry.region
    WHERE regions.parent_slug IS NOT NULL
)
SELECT port, region FROM ancestry
WHERE region IN (SELECT region FROM ancestry GROUP BY region
                 HAVING count(*) >= (SELECT rollup_min_ports FROM rollup_settings))
"""
# In hash order, not sorted: the one index over these rows (the merged rows' key) sorts them
# when it is built after the table fills, and reads scan that index only. Sorted rows made the
# statement take 10.1-12.1 s instead of 5.5-5.7 s and saved the index build only 1.1-1.2 s
# (0.9-1.0 s instead of 2.1-2.2 s; 10M prices, two alternating loads each).
REBUILD_ROUTE_DAYS = """
INSERT INTO route_days (orig_code, dest_code, day, total, prices)
SELECT orig_code, dest_code, day, sum(price), count(*)
FROM prices
WHERE batch_id IS NULL
   OR batch_id IN (SELECT id FROM batches WHERE status = 'succeeded')
GROUP BY orig_code, dest_code, day
"""
# Region-pair totals are summed into a scratch table first: PostgreSQL runs the SELECT of a
# CREATE TABLE AS with parallel workers, never that of an INSERT (10M prices: 4.2 s -> 3.0 s),
# and the result is small (62k rows for 10M prices) to copy on.
STAGE_REGION_DAYS = """
CREATE TEMPORARY TABLE region_days_staged AS
SELECT origin.region AS orig_region, destination.region AS dest_region, route_days.day,
       sum(route_days.total) AS total, sum(route_days.prices) AS prices
FROM route_days
JOIN port_rollups AS origin ON origin.port = route_days.orig_code
JOIN port_rollups AS destination ON destination.port = route_days.dest_code
GROUP BY 1, 2, 3
"""
REBUILD_REGION_DAYS = """
INSERT INTO region_days (orig_region, dest_region, day, total, prices)
SELECT orig_region, dest_region, day, total, prices FROM region_days_staged
ORDER BY 1, 2, 3
"""
NEXT_DATA_VERSION = "UPDATE data_version SET version = version + 1"


# The plain (non-constraint) indexes of a table, as pg_dump would recreate them.
PLAIN_INDEXES = """
SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
WHERE t.oid = %s::regclass
  AND pg_has_role(t.relowner, 'USAGE')
  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


@contextmanager
def _indexes_built_after(conn: psycopg.Connection[Any], table: str) -> Iterator[None]:
    """Drops the table's plain indexes and builds them again at the end: one sorted build is
    several times cheaper than inserting millions of rows into each index. Only for a table
    this transaction has just emptied (its TRUNCATE already locks out readers) and this role
    owns; otherwise the rows go in with the indexes in place."""
    indexes = conn.execute(PLAIN_INDEXES, [table]).fetchall()
    for schema, name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    yield
    for _, _, definition in indexes:
        conn.execute(definition)


def rebuild_read_model(conn: psycopg.Connection[Any], rollup_min_ports: int | None = None) -> None:
    """Recomputes every total the rates query reads (route and region-pair days, routes, the
    large regions) from prices, after a dump load or demo data; call it inside the transaction
    that wrote the prices, so no reader sees prices without totals."""
    # Grouping millions of prices: in memory rather than spilled to disk in 4 MB runs.
    conn.execute("SET LOCAL work_mem = '256MB'")
    if rollup_min_ports is not None:
        conn.execute("UPDATE rollup_settings SET rollup_min_ports = %s", [rollup_min_ports])
    conn.execute("TRUNCATE route_days, region_days, routes, port_rollups")
    # Tables filled in this very transaction have no statistics yet: without them the planner
    # sorted millions of rows where hashing was cheap (a 10M-price load took 4x psql's time).
    conn.execute("ANALYZE prices")
    with _indexes_built_after(conn, "route_days"):
        conn.execute(REBUILD_ROUTE_DAYS)
    conn.execute("ANALYZE route_days")
    conn.execute("INSERT INTO routes SELECT DISTINCT orig_code, dest_code FROM route_days")
    conn.execute(REBUILD_PORT_ROLLUPS)
    conn.execute("ANALYZE port_rollups")
    # Sessions run without parallel workers (rates.db.connection says why); this one
    # statement gains from them.
    conn.execute("SET LOCAL max_parallel_workers_per_gather = 2")
    conn.execute(STAGE_REGION_DAYS)
    conn.execute("RESET max_parallel_workers_per_gather")
    conn.execute(REBUILD_REGION_DAYS)
    conn.execute("DROP TABLE region_days_staged")
    conn.execute("ANALYZE regions, ports, routes, region_days")
    conn.execute(
        "UPDATE batches SET rolled_up = true, merged = true"
        " WHERE status = 'succeeded' AND NOT (rolled_up AND merged)"
    )
    conn.execute(NEXT_DATA_VERSION)


def vacuum_read_model(conn: psycopg.Connection[Any]) -> None:
    """Sets the visibility map of the tables the rates query scans index-only, right after a
    rebuild (which analyzed them already). ``prices`` is left to autovacuum: nothing scans it
    index-only, and vacuuming millions of fresh rows would take as long as loading them.

    VACUUM cannot run in a transaction: without autocommit, autovacuum does it later."""
    if conn.autocommit:
        conn.execute("VACUUM regions, ports, route_days, routes, port_rollups, region_days")


# Login role -> the group role holding its privileges (created by migration 0003).
LOGIN_ROLES = {"rates_api": "rates_read", "rates_worker": "rates_write"}


def grant_login(conn: psycopg.Connection[Any], login: str, password: str) -> None:
    """Creates or updates a login role with the given password, a member of its group role."""
    group = LOGIN_ROLES[login]
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [login]).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(login), sql.Literal(password)
        )
    )
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login)))
