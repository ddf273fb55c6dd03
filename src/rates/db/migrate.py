"""Versioned migrations: numbered ``.sql`` files applied once each, in order, each in its own
transaction, under an advisory lock so concurrent deploy tasks cannot race.

Each migration runs with a ``lock_timeout``: a DDL statement queued behind a long COPY would
otherwise hold its place in the lock queue and block every API read behind it. A migration
that cannot get its locks in time rolls back and is retried after a pause, a few times, before
the deploy gives up (the old code keeps serving meanwhile). A ``statement_timeout`` bounds the
rest.

Migrations expand the schema before a deploy, so the code still serving keeps working against
it. Marker lines at the top of a file change how it runs:

* ``-- post-deploy``: it removes what that code still uses (an index its statements need, say),
  so a deploy applies it only once no old code serves (``migrate(..., before_deploy=True)``
  leaves it pending, a later plain run applies it). Post-deploy migrations only remove, so
  nothing applied after one may depend on it.
* ``-- no-transaction``: its statements run one by one outside a transaction, so an index on a
  large table can be built ``CONCURRENTLY``, blocking neither readers nor writers. Each of its
  statements must take only such locks (it waits for them, bounded by the statement timeout)
  and be safe to run again (``IF [NOT] EXISTS``): a failed run is repeated from the start,
  after the invalid indexes a failed concurrent build leaves behind are dropped."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

# Any constant shared by every migrator works; this one spells "rates" in ASCII.
_MIGRATION_LOCK_ID = 0x7261746573


@dataclass(frozen=True)
class MigrationLimits:
    """How long a migration may wait for a lock and run, and how often it is retried."""

    lock_timeout_ms: int = 2_000
    statement_timeout_ms: int = 600_000
    attempts: int = 5
    retry_pause_s: float = 3.0


_POST_DEPLOY_MARKER = "-- post-deploy"
_NO_TRANSACTION_MARKER = "-- no-transaction"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def post_deploy(self) -> bool:
        return _POST_DEPLOY_MARKER in self._markers

    @property
    def in_transaction(self) -> bool:
        return _NO_TRANSACTION_MARKER not in self._markers

    @property
    def _markers(self) -> set[str]:
        markers = set()
        for line in self.sql.splitlines():
            if line not in (_POST_DEPLOY_MARKER, _NO_TRANSACTION_MARKER):
                break
            markers.add(line)
        return markers

    def statements(self) -> list[str]:
        """The statements of a no-transaction migration: each ends its line with a semicolon."""
        code = "\n".join(line for line in self.sql.splitlines() if not line.startswith("--"))
        return [
            statement.strip()
            for statement in re.split(r";$", code, flags=re.M)
            if statement.strip()
        ]

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def available_migrations() -> list[Migration]:
    """The migrations shipped in the package, ordered by version."""
    folder = resources.files("rates.db") / "migrations"
    migrations = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            migrations.append(
                Migration(int(version), rest.removesuffix(".sql"), entry.read_text("utf-8"))
            )
    return sorted(migrations, key=lambda migration: migration.version)


def migrate(
    conn: psycopg.Connection[Any],
    limits: MigrationLimits = MigrationLimits(),
    *,
    before_deploy: bool = False,
) -> list[Migration]:
    """Applies the pending migrations and returns them; a no-op when the schema is current.

    ``before_deploy`` leaves post-deploy migrations pending (see the module docstring)."""
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", [_MIGRATION_LOCK_ID])
    try:
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        pending = [m for m in pending_migrations(conn) if not (before_deploy and m.post_deploy)]
        for migration in pending:
            _apply(conn, migration, limits)
        return pending
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATION_LOCK_ID])


def pending_migrations(conn: psycopg.Connection[Any]) -> list[Migration]:
    """The shipped migrations this database has not applied yet, in order."""
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    return [m for m in available_migrations() if m.version not in applied]


def _apply(conn: psycopg.Connection[Any], migration: Migration, limits: MigrationLimits) -> None:
    if not migration.in_transaction:
        _apply_outside_transaction(conn, migration, limits)
        return
    for attempt in range(1, limits.attempts + 1):
        try:
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('lock_timeout', %s, true),"
                    " set_config('statement_timeout', %s, true)",
                    [f"{limits.lock_timeout_ms}ms", f"{limits.statement_timeout_ms}ms"],
                )
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    [migration.version, migration.name],
                )
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == limits.attempts:
                raise
            time.sleep(limits.retry_pause_s)


# Indexes a failed CREATE INDEX CONCURRENTLY left behind: never used, still written to.
_INVALID_INDEXES = """
SELECT n.nspname, c.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname = current_schema()
"""


def _apply_outside_transaction(
    conn: psycopg.Connection[Any], migration: Migration, limits: MigrationLimits
) -> None:
    for schema, name in conn.execute(_INVALID_INDEXES).fetchall():
        conn.execute(
            sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, name))
        )
    # Its statements block no reader or writer, so waiting for their locks harms nobody.
    conn.execute(
        "SELECT set_config('lock_timeout', '0', false), set_config('statement_timeout', %s, false)",
        [f"{limits.statement_timeout_ms}ms"],
    )
    try:
        for statement in migration.statements():
            conn.execute(statement.encode())
    finally:
        conn.execute("RESET lock_timeout")
        conn.execute("RESET statement_timeout")
    conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
        [migration.version, migration.name],
    )
