"""Shared fixtures: a real PostgreSQL started by the suite, a fresh database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from rates.db.dump import load_dump, open_dump
from rates.db.migrate import migrate
from rates.devstack import LocalPostgres

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DUMP = REPO_ROOT.parent / "shared" / "data" / "rates.sql"

# Durability is not under test here; these make the suite several times faster.
_FAST_SERVER = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
_database_numbers = itertools.count()


@pytest.fixture(autouse=True)
def _scrub_rates_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's RATES_* configuration."""
    for name in list(os.environ):
        if name.startswith("RATES_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """One cluster for the whole run, in a /tmp folder an unprivileged user can reach."""
    root = Path(tempfile.mkdtemp(prefix="rates-test-pg-", dir="/tmp"))
    root.chmod(0o755)
    cluster = LocalPostgres(root, server_settings=_FAST_SERVER)
    cluster.ensure_initialized()
    cluster.start()
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE rates_template")
    with psycopg.connect(cluster.conninfo("rates_template"), autocommit=True) as conn:
        migrate(conn)
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


def _fresh_database(cluster: LocalPostgres, template: str) -> str:
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return name


def _drop_database(cluster: LocalPostgres, name: str) -> None:
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database_url(postgres: LocalPostgres) -> Iterator[str]:
    """A migrated, empty database of this test's own."""
    name = _fresh_database(postgres, "rates_template")
    yield postgres.url(name)
    _drop_database(postgres, name)


@pytest.fixture
def unmigrated_database_url(postgres: LocalPostgres) -> Iterator[str]:
    """An empty database of this test's own, with no migration applied."""
    name = _fresh_database(postgres, "template1")
    yield postgres.url(name)
    _drop_database(postgres, name)


@pytest.fixture(scope="session")
def sample_template(postgres: LocalPostgres) -> str:
    """A template database holding the sample dump, loaded once per run."""
    if not SAMPLE_DUMP.exists():
        pytest.skip(f"sample dump not found at {SAMPLE_DUMP}")
    name = _fresh_database(postgres, "rates_template")
    with (
        psycopg.connect(postgres.conninfo(name), autocommit=True) as conn,
        open_dump(SAMPLE_DUMP) as dump,
    ):
        load_dump(conn, dump)
    return name


@pytest.fixture
def sample_database_url(postgres: LocalPostgres, sample_template: str) -> Iterator[str]:
    """A database of this test's own, holding the sample data set."""
    name = _fresh_database(postgres, sample_template)
    yield postgres.url(name)
    _drop_database(postgres, name)
