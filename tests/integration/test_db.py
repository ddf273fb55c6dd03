"""Migrations, dump loading and demo data against a real PostgreSQL."""

from __future__ import annotations

import gzip
import io
import threading
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from rates.cli import app
from rates.db.connection import connect
from rates.db.demo import DemoSpec, generate_demo
from rates.db.dump import load_dump, open_dump
from rates.db.migrate import (
    MigrationLimits,
    available_migrations,
    migrate,
    pending_migrations,
)
from rates.db.queries import rebuild_read_model
from rates.errors import DataAlreadyLoaded, InvalidDump
from rates.ingest.batches import ADD_TO_REGION_DAYS
from rates.query import DAILY_RATES_SQL, MIN_PRICES_PER_DAY, PORT_PAIR_RATES_SQL
from rates.settings import Settings
from tests.conftest import SAMPLE_DUMP


def counts(conn: psycopg.Connection) -> dict[str, int]:
    return {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        for table in ("regions", "ports", "prices")
    }


def test_migrate_is_idempotent_and_records_every_version(database_url: str) -> None:
    """A second migrate applies nothing; every shipped migration is recorded once."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert migrate(conn) == []
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in available_migrations()]


# The port-pair statement of the release before migration 0017, which reads route-days
# without naming batch_id: during a deploy from it, it still serves until the shift ends.
PREVIOUS_RELEASE_PORT_PAIR_READ = """
SELECT day, sum(total), sum(prices) FROM route_days
WHERE orig_code = %(origin)s AND dest_code = %(destination)s
  AND day BETWEEN %(date_from)s AND %(date_to)s
GROUP BY day
"""
PAIR = {"origin": "AAAAA", "destination": "BBBBB", "min_prices": 3}
WINDOW = {"date_from": "2021-01-01", "date_to": "2021-01-31"}


def route_days_scans(conn: psycopg.Connection, statement: str) -> list[str]:
    """How the plan reads route_days, with sequential scans priced out: a "Seq Scan" left in
    the plan means no index can serve the read."""
    conn.execute("SET enable_seqscan = off")
    plan = conn.execute("EXPLAIN " + statement, {**PAIR, **WINDOW}).fetchall()
    conn.execute("RESET enable_seqscan")
    return [line for (line,) in plan if "on route_days" in line]


def test_before_a_deploy_post_deploy_migrations_wait_and_the_running_release_keeps_its_index(
    unmigrated_database_url: str,
) -> None:
    """`migrate --before-deploy` applies every migration but the post-deploy ones, so the
    release still serving keeps the index its reads need; a plain run later applies the rest,
    and then both kinds of route-day rows are read through indexes of their own."""
    post_deploy = [m for m in available_migrations() if m.post_deploy]
    assert [m.version for m in post_deploy] == [18]
    with psycopg.connect(unmigrated_database_url, autocommit=True) as conn:
        applied = migrate(conn, before_deploy=True)
        assert [m.version for m in applied] == [
            m.version for m in available_migrations() if not m.post_deploy
        ]
        assert pending_migrations(conn) == post_deploy
        scans = route_days_scans(conn, PREVIOUS_RELEASE_PORT_PAIR_READ)
        assert scans and all("route_days_route_day_idx" in line for line in scans), scans
        assert migrate(conn, before_deploy=True) == []

        assert migrate(conn) == post_deploy
        assert pending_migrations(conn) == []
        scans = route_days_scans(conn, PORT_PAIR_RATES_SQL)
        assert len(scans) == 2 and not any("Seq Scan" in line for line in scans), scans
        assert "route_days_merged_idx" in scans[0] and "route_days_appended_idx" in scans[1]
        scans = route_days_scans(conn, DAILY_RATES_SQL)
        assert len(scans) == 2 and not any("Seq Scan" in line for line in scans), scans
        assert "Seq Scan" in route_days_scans(conn, PREVIOUS_RELEASE_PORT_PAIR_READ)[0]


def migrate_in_background(
    database_url: str, limits: MigrationLimits | None = None, *, before_deploy: bool = False
) -> tuple[threading.Thread, list[int]]:
    """Starts `migrate` in a thread of its own; the list fills with the versions it applied."""
    applied: list[int] = []

    def run() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            migrated = migrate(conn, limits or MigrationLimits(), before_deploy=before_deploy)
            applied.extend(m.version for m in migrated)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, applied


def wait_until_a_statement_waits_for_a_lock(database_url: str, statement_start: str) -> None:
    """Polls until another session's statement starting so is waiting for a lock: from then
    on, whatever runs beside it runs while it waits."""
    deadline = time.monotonic() + 10
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database() AND query LIKE %s || '%%')",
                [statement_start],
            ).fetchone()
            if waiting == (True,):
                return
            time.sleep(0.01)
    raise AssertionError(f"no statement starting {statement_start!r} waited for a lock")


def each_within_half_a_second(database_url: str, statements: list[tuple[str, list]]) -> None:
    """Runs the statements one by one on a session of its own, a little apart, each of them
    answered within half a second (the session gives up on any after 2 s)."""
    with psycopg.connect(
        database_url, autocommit=True, options="-c statement_timeout=2000"
    ) as session:
        for statement, params in statements:
            started = time.monotonic()
            session.execute(statement, params)
            assert time.monotonic() - started < 0.5, statement
            time.sleep(0.05)


# route_days' indexes as migration 0016 left them, with 0017 and 0018 not applied.
BEFORE_0017 = """
DROP INDEX route_days_merged_idx;
DROP INDEX route_days_appended_idx;
CREATE UNIQUE INDEX route_days_merged_key ON route_days (orig_code, dest_code, day)
    WHERE batch_id IS NULL;
CREATE INDEX route_days_batch_idx ON route_days (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX route_days_route_day_idx ON route_days (orig_code, dest_code, day)
    INCLUDE (total, prices);
DELETE FROM schema_migrations WHERE version IN (17, 18);
"""
ADD_ROUTE_DAY = "INSERT INTO route_days VALUES (%s, 'BBBBB', '2021-01-01', 100, 1)"
ROUTE_DAY_INDEXES = """
SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'route_days'::regclass
"""


def test_a_concurrent_index_build_blocks_no_writer_and_waits_for_open_ones(
    database_url: str,
) -> None:
    """Migration 0017 runs outside a transaction and builds its indexes CONCURRENTLY: while a
    batch's transaction that wrote route_days is still open, the build waits for it, and other
    writers go on committing meanwhile (a plain build would queue them all behind it)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(BEFORE_0017)
    open_batch = psycopg.connect(database_url)
    open_batch.execute(ADD_ROUTE_DAY, ["OPEN0"])  # uncommitted, like a batch being applied
    migrating, applied = migrate_in_background(database_url, before_deploy=True)
    try:
        wait_until_a_statement_waits_for_a_lock(database_url, "CREATE UNIQUE INDEX CONCURRENTLY")
        each_within_half_a_second(
            database_url, [(ADD_ROUTE_DAY, [f"W{number:04d}"]) for number in range(10)]
        )
        assert applied == [] and migrating.is_alive()
        open_batch.commit()
    finally:
        open_batch.close()
        migrating.join(timeout=30)
    assert applied == [17]
    with psycopg.connect(database_url) as conn:
        assert dict(conn.execute(ROUTE_DAY_INDEXES).fetchall()) == {
            "route_days_merged_idx": True,
            "route_days_appended_idx": True,
            "route_days_route_day_idx": True,
        }


def test_a_failed_concurrent_build_is_cleared_and_run_again(database_url: str) -> None:
    """A concurrent build that fails leaves an invalid index and the migration unrecorded; the
    next run drops the leftover and applies the whole migration again."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(BEFORE_0017)
        conn.execute("DROP INDEX route_days_merged_key")
        for _ in range(2):  # two merged rows for one route-day: the unique build must fail
            conn.execute(ADD_ROUTE_DAY, ["AAAAA"])
        with pytest.raises(psycopg.errors.UniqueViolation):
            migrate(conn, before_deploy=True)
        assert dict(conn.execute(ROUTE_DAY_INDEXES).fetchall())["route_days_merged_idx"] is False
        assert [m.version for m in pending_migrations(conn)] == [17, 18]

        conn.execute("DELETE FROM route_days WHERE ctid = (SELECT min(ctid) FROM route_days)")
        assert [m.version for m in migrate(conn, before_deploy=True)] == [17]
        assert set(dict(conn.execute(ROUTE_DAY_INDEXES).fetchall()).items()) == {
            ("route_days_merged_idx", True),
            ("route_days_appended_idx", True),
            ("route_days_route_day_idx", True),
        }


def test_the_migrate_command_names_what_it_left_for_after_the_deploy(
    unmigrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a deploy's log shows: the migrations applied, then those left pending."""
    monkeypatch.setenv("RATES_DATABASE_URL", unmigrated_database_url)
    # Logging set up inside CliRunner would write to its stream, closed after the call.
    monkeypatch.setattr("rates.cli.configure_logging", lambda settings: None)
    before = CliRunner().invoke(app, ["db", "migrate", "--before-deploy"], terminal_width=500)
    assert before.exit_code == 0, before.output
    assert "0017_route_days_index_per_kind" in before.output
    assert before.output.splitlines()[-1] == (
        "left for after the deploy: 0018_route_days_drop_index_over_all_rows"
    )
    after = CliRunner().invoke(app, ["db", "migrate"], terminal_width=500)
    assert after.exit_code == 0, after.output
    assert after.output.splitlines() == [
        "applied migrations: 0018_route_days_drop_index_over_all_rows"
    ]


def test_a_migration_behind_a_long_transaction_does_not_block_readers(database_url: str) -> None:
    """DDL queued behind a long transaction gives up its place after lock_timeout, so readers
    are never stuck behind it, and is retried until the transaction ends."""
    with psycopg.connect(database_url, autocommit=True) as conn:  # 0015 not applied yet
        conn.execute("DROP INDEX batches_stored_object_key")
        conn.execute("DELETE FROM schema_migrations WHERE version = 15")
    blocker = psycopg.connect(database_url)
    blocker.execute("SELECT count(*) FROM batch_attempts")  # holds its lock, like a long COPY
    limits = MigrationLimits(lock_timeout_ms=100, attempts=50, retry_pause_s=0.1)
    migrating, applied = migrate_in_background(database_url, limits)
    try:
        # While the migration (0015's text) waits and retries.
        wait_until_a_statement_waits_for_a_lock(database_url, "-- One stored object")
        each_within_half_a_second(database_url, [("SELECT count(*) FROM batch_attempts", [])] * 10)
        assert applied == [] and migrating.is_alive()
    finally:
        blocker.close()
        migrating.join(timeout=30)
    assert applied == [15]


def test_schema_has_the_columns_of_the_sample_dump(database_url: str) -> None:
    """ports, regions and prices carry at least the dump's columns, with its types."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """
            SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name IN ('ports', 'regions', 'prices')
            """
        ).fetchall()
    columns = {(t, c): d for t, c, d in rows}
    expected = {
        ("ports", "code"): "text",
        ("ports", "name"): "text",
        ("ports", "parent_slug"): "text",
        ("regions", "slug"): "text",
        ("regions", "name"): "text",
        ("regions", "parent_slug"): "text",
        ("prices", "orig_code"): "text",
        ("prices", "dest_code"): "text",
        ("prices", "day"): "date",
        ("prices", "price"): "integer",
    }
    assert {key: columns.get(key) for key in expected} == expected


@pytest.mark.skipif(not SAMPLE_DUMP.exists(), reason="sample dump not present")
def test_sample_dump_loads_in_full(database_url: str) -> None:
    """Every row of the sample's three COPY blocks arrives."""
    with psycopg.connect(database_url, autocommit=True) as conn, open_dump(SAMPLE_DUMP) as dump:
        result = load_dump(conn, dump)
        assert counts(conn) == {"regions": 20, "ports": 143, "prices": 56_689}
    assert result.rows == {"ports": 143, "prices": 56_689, "regions": 20}


@pytest.mark.skipif(not SAMPLE_DUMP.exists(), reason="sample dump not present")
def test_loading_twice_is_refused_and_replace_does_not_duplicate(
    database_url: str, tmp_path: Path
) -> None:
    """A second load is refused with no change; --replace reloads to the same counts (gzip too)."""
    compressed = tmp_path / "rates.sql.gz"
    compressed.write_bytes(gzip.compress(SAMPLE_DUMP.read_bytes()))
    with psycopg.connect(database_url, autocommit=True) as conn:
        with open_dump(SAMPLE_DUMP) as dump:
            load_dump(conn, dump)
        before = counts(conn)
        with pytest.raises(DataAlreadyLoaded, match="--replace"), open_dump(SAMPLE_DUMP) as dump:
            load_dump(conn, dump)
        assert counts(conn) == before
        with open_dump(compressed) as dump:
            load_dump(conn, dump, replace=True)
        assert counts(conn) == before


@pytest.mark.parametrize(
    ("dump_text", "message"),
    [
        ("SELECT 1;\n", "no COPY block"),
        ("COPY public.users (id) FROM stdin;\n1\n\\.\n", "'users' is not one of"),
        ("COPY public.ports (code, secret) FROM stdin;\nX\ty\n\\.\n", "unknown columns"),
        ("COPY public.regions (slug, name, parent_slug) FROM stdin;\na\tA\t\\N\n", "terminating"),
    ],
)
def test_bad_dumps_are_refused_and_leave_nothing(
    database_url: str, dump_text: str, message: str
) -> None:
    """A file that is not a dump of our tables fails clearly, in one rolled-back transaction."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(InvalidDump, match=message):
            load_dump(conn, io.StringIO(dump_text))
        assert counts(conn) == {"regions": 0, "ports": 0, "prices": 0}


def test_dump_with_a_port_in_an_unknown_region_is_rolled_back(database_url: str) -> None:
    """Foreign keys on ports and regions are checked at commit; a broken dump leaves nothing."""
    dump = (
        "COPY public.regions (slug, name, parent_slug) FROM stdin;\nnorth\tNorth\t\\N\n\\.\n"
        "COPY public.ports (code, name, parent_slug) FROM stdin;\nAAAAA\tA\tsouth\n\\.\n"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            load_dump(conn, io.StringIO(dump))
        assert counts(conn) == {"regions": 0, "ports": 0, "prices": 0}


def test_demo_data_is_deterministic_nested_and_varied(database_url: str) -> None:
    """Same seed gives the same prices; ports sit at every tree level; some days have < 3."""
    spec = DemoSpec(ports=40, days=20, prices_per_route_day=2.0, depth=4, branching=2, seed=7)
    with psycopg.connect(database_url, autocommit=True) as conn:
        first = generate_demo(conn, spec)
        fingerprint = conn.execute(
            "SELECT count(*), sum(price), sum(extract(doy FROM day) * price) FROM prices"
        ).fetchone()
        generate_demo(conn, spec, replace=True)
        again = conn.execute(
            "SELECT count(*), sum(price), sum(extract(doy FROM day) * price) FROM prices"
        ).fetchone()
        assert fingerprint == again
        assert first.prices == fingerprint[0] > 0  # type: ignore[index]
        depth_of_ports = {
            row[0]
            for row in conn.execute(
                """
                WITH RECURSIVE tree(slug, depth) AS (
                    SELECT slug, 1 FROM regions WHERE parent_slug IS NULL
                    UNION ALL
                    SELECT r.slug, t.depth + 1 FROM regions r JOIN tree t ON r.parent_slug = t.slug
                )
                SELECT DISTINCT depth FROM ports JOIN tree ON tree.slug = ports.parent_slug
                """
            )
        }
        assert depth_of_ports == {1, 2, 3, 4}
        per_route_day = [
            row[0]
            for row in conn.execute(
                "SELECT count(*) FROM prices GROUP BY orig_code, dest_code, day"
            )
        ]
        assert min(per_route_day) < 3 <= max(per_route_day)
        with pytest.raises(DataAlreadyLoaded):
            generate_demo(conn, spec)


def test_rates_sessions_never_start_parallel_workers(database_url: str) -> None:
    """Even where the planner rates a parallel plan cheapest, a rates session plans none: the
    workers' start-up (~4 ms) dominated every rates query once prices carried batch ids."""
    with connect(Settings(database_url=database_url)) as conn:
        for cheap_parallelism in (
            "parallel_setup_cost = 0",
            "parallel_tuple_cost = 0",
            "min_parallel_table_scan_size = 0",
            "min_parallel_index_scan_size = 0",
        ):
            conn.execute(f"SET {cheap_parallelism}")
        query = {
            "origin": "china_main",
            "destination": "northern_europe",
            "date_from": "2021-01-01",
            "date_to": "2021-01-31",
            "min_prices": MIN_PRICES_PER_DAY,
        }
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + DAILY_RATES_SQL, query))
        assert "Gather" not in plan
        conn.execute("SET max_parallel_workers_per_gather = 2")  # what PostgreSQL would do
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + DAILY_RATES_SQL, query))
        assert "Gather" in plan


@pytest.mark.parametrize("chunk_chars", [7, 64, 1 << 20])
def test_dump_blocks_load_whole_whatever_the_slices(
    database_url: str, monkeypatch: pytest.MonkeyPatch, chunk_chars: int
) -> None:
    """COPY blocks are handed over in large slices: a terminator at any slice edge ends its
    block exactly, the next block is still found, and the last line may lack its newline."""
    monkeypatch.setattr("rates.db.dump._CHUNK_CHARS", chunk_chars)
    prices = [f"P{i % 7}\tP{(i + 1) % 7}\t2021-01-{1 + i % 28:02d}\t{100 + i}" for i in range(3000)]
    text = (
        "-- a dump\n"
        "COPY public.prices (orig_code, dest_code, day, price) FROM stdin;\n"
        + "\n".join(prices)
        + "\n\\.\n\n"
        "COPY public.regions (slug, name, parent_slug) FROM stdin;\nr\tR\t\\N\n\\.\n"
        "COPY public.ports (code, name, parent_slug) FROM stdin;\n"
        + "".join(f"P{i}\tPort {i}\tr\n" for i in range(7))
        + "\\."
    )
    with psycopg.connect(database_url) as conn:
        result = load_dump(conn, io.StringIO(text))
        assert result.rows == {"prices": 3000, "regions": 1, "ports": 7}
        total = conn.execute("SELECT sum(price) FROM prices").fetchone()[0]  # type: ignore[index]
        assert total == sum(100 + i for i in range(3000))
        days = conn.execute("SELECT sum(prices) FROM route_days").fetchone()[0]  # type: ignore[index]
        assert days == 3000


SMALL_DUMP = (
    "COPY public.regions (slug, name, parent_slug) FROM stdin;\nr\tR\t\\N\n\\.\n"
    "COPY public.ports (code, name, parent_slug) FROM stdin;\nAAAAA\tA\tr\nBBBBB\tB\tr\n\\.\n"
    "COPY public.prices (orig_code, dest_code, day, price) FROM stdin;\n"
    "AAAAA\tBBBBB\t2021-01-01\t100\nAAAAA\tBBBBB\t2021-01-01\t200\n"
    "BBBBB\tAAAAA\t2021-01-02\t300\n\\.\n"
)


def test_a_load_rebuilds_the_route_day_indexes_it_set_aside(database_url: str) -> None:
    """Loading drops route_days' indexes while it fills the table and builds the same ones
    again: every index the migrations made is there afterwards, with the same definition."""
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'route_days'"
    with psycopg.connect(database_url, autocommit=True) as conn:
        before = sorted(conn.execute(indexes).fetchall())
        assert len(before) == 2  # merged rows, appended rows (0017, 0018)
        load_dump(conn, io.StringIO(SMALL_DUMP))
        assert sorted(conn.execute(indexes).fetchall()) == before
        assert conn.execute("SELECT sum(prices) FROM route_days").fetchone()[0] == 3  # type: ignore[index]


def test_a_dump_load_leaves_prices_frozen_for_vacuum_to_skip(database_url: str) -> None:
    """The load copies prices frozen (it empties the tables in its own transaction first), so
    no later vacuum has to visit every loaded page again to set its visibility and freeze it;
    the load's own ANALYZE counts the pages as all-visible."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        load_dump(conn, io.StringIO(SMALL_DUMP))
        pages, all_visible = conn.execute(
            "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'prices'"
        ).fetchone()  # type: ignore[misc]
    assert pages > 0 and all_visible == pages


def test_batches_update_region_days_in_place(database_url: str) -> None:
    """Each batch adds to nearly every region-day of the large regions, again and again: every
    such update stays on its page (HOT), and the table and its key index do not grow."""
    sizes = "SELECT pg_relation_size('region_days'), pg_relation_size('region_days_pkey')"
    # This backend's counts so far (they include earlier transactions' until flushed, so the
    # statement's own are the difference across it, within its transaction).
    counts = (
        "SELECT pg_stat_get_xact_tuples_updated('region_days'::regclass),"
        " pg_stat_get_xact_tuples_hot_updated('region_days'::regclass)"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        generate_demo(conn, DemoSpec(ports=60, days=92, seed=3))
        with conn.transaction():
            rebuild_read_model(conn, rollup_min_ports=5)
        region_days = conn.execute("SELECT count(*) FROM region_days").fetchone()[0]  # type: ignore[index]
        assert region_days > 2_000
        before = conn.execute(sizes).fetchone()
        for _ in range(3):
            with conn.transaction():
                conn.execute(
                    "CREATE TEMPORARY TABLE batch_totals ON COMMIT DROP AS"
                    " SELECT orig_code, dest_code, day, sum(price) AS total, count(*) AS prices"
                    " FROM prices GROUP BY 1, 2, 3"
                )
                updated_before, hot_before = conn.execute(counts).fetchone()  # type: ignore[misc]
                conn.execute(ADD_TO_REGION_DAYS)
                updated, hot = conn.execute(counts).fetchone()  # type: ignore[misc]
            assert (updated - updated_before, hot - hot_before) == (region_days, region_days)
        assert conn.execute(sizes).fetchone() == before
