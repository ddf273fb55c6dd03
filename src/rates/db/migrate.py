"""Versioned migrations: numbered ``.sql`` files applied once each, in order, each in its own
transaction, under an advisory lock so concurrent deploy tasks cannot race."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

# Any constant shared by every migrator works; this one spells "rates" in ASCII.
_MIGRATION_LOCK_ID = 0x7261746573


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


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


def migrate(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Applies the pending migrations and returns them; a no-op when the schema is current."""
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
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        pending = [m for m in available_migrations() if m.version not in applied]
        for migration in pending:
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    [migration.version, migration.name],
                )
        return pending
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATION_LOCK_ID])
