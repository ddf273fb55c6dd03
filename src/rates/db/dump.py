"""Loads a pg_dump-style file (like the sample data set) without needing ``psql``.

Only the ``COPY ... FROM stdin`` blocks of the three rates tables are read; the dump's DDL is
ignored because the schema comes from our migrations. The load is one transaction: all of it or
nothing. Tables that already hold data are refused unless ``replace`` is set, which empties them
first in the same transaction, so loading the same dump twice never duplicates a row.
"""

from __future__ import annotations

import gzip
import io
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from rates.db.queries import rates_tables_are_empty, rebuild_read_model, vacuum_read_model
from rates.errors import DataAlreadyLoaded, InvalidDump
from rates.settings import Settings
from rates.storage import PayloadStore

# Columns the loader accepts per table; anything else in a dump is refused.
LOADABLE_COLUMNS = {
    "regions": {"slug", "name", "parent_slug"},
    "ports": {"code", "name", "parent_slug"},
    "prices": {"orig_code", "dest_code", "day", "price"},
}
_COPY_HEADER = re.compile(r"^COPY (?:\"?public\"?\.)?\"?(\w+)\"? \(([^)]*)\) FROM stdin;$")
_CHUNK_CHARS = 1 << 20


@dataclass
class LoadResult:
    rows: dict[str, int] = field(default_factory=dict)


@contextmanager
def open_dump(path: Path) -> Iterator[IO[str]]:
    """Opens a plain or gzip-compressed dump as text."""
    raw = path.open("rb")
    try:
        stream: IO[bytes] = raw
        if path.suffix == ".gz":
            stream = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]  # a binary IO
        yield io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
    finally:
        raw.close()


@contextmanager
def open_dump_source(settings: Settings, source: str) -> Iterator[IO[str]]:
    """A local path, or ``s3://bucket/key`` (how the AWS import task is given its dump)."""
    if not source.startswith("s3://"):
        path = Path(source)
        if not path.is_file():
            raise InvalidDump(f"{source}: no such file")
        with open_dump(path) as dump:
            yield dump
        return
    with PayloadStore(settings).open(source) as raw:
        stream: IO[bytes] = raw
        if source.endswith(".gz"):
            stream = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]  # a binary IO
        yield io.TextIOWrapper(stream, encoding="utf-8", newline="\n")


def load_dump(
    conn: psycopg.Connection[Any],
    dump: IO[str],
    *,
    replace: bool = False,
    sample: float | None = None,
) -> LoadResult:
    """Streams the dump's COPY blocks into the migrated tables in one transaction.

    With ``sample`` (0 < f <= 1) only that fraction of the prices is kept (chosen by a seeded
    generator, so the same dump samples the same way); ports and regions are kept whole."""
    if sample is not None and not 0 < sample <= 1:
        raise InvalidDump(f"the sample fraction must be in (0, 1], got {sample}")
    keep = random.Random(0).random if sample is not None else None
    result = LoadResult()
    with conn.transaction():
        if not replace and not rates_tables_are_empty(conn):
            raise DataAlreadyLoaded(
                "the database already holds rates data; use --replace to empty the tables "
                "and load this dump instead"
            )
        # Emptied in this transaction even when empty already: COPY may then write the rows
        # frozen and all-visible, so no vacuum has to visit every loaded page again later.
        conn.execute("TRUNCATE prices, ports, regions")
        reader = _DumpReader(dump)
        for line_number, line in enumerate(reader, start=1):
            header = _COPY_HEADER.match(line.rstrip("\n"))
            if header is None:
                continue
            table, columns = header.group(1), [c.strip(' "') for c in header.group(2).split(",")]
            _check_columns(table, columns, line_number)
            fraction = sample if table == "prices" else None
            copied = _copy_block(conn, table, columns, reader, keep, fraction)
            result.rows[table] = result.rows.get(table, 0) + copied
        if not result.rows:
            raise InvalidDump("the file holds no COPY block for ports, regions or prices")
        rebuild_read_model(conn)
    vacuum_read_model(conn)
    return result


def _check_columns(table: str, columns: list[str], line_number: int) -> None:
    allowed = LOADABLE_COLUMNS.get(table)
    if allowed is None:
        raise InvalidDump(
            f"line {line_number}: table {table!r} is not one of {sorted(LOADABLE_COLUMNS)}"
        )
    unknown = set(columns) - allowed
    if unknown:
        raise InvalidDump(f"line {line_number}: unknown columns {sorted(unknown)} for {table}")


class _DumpReader:
    """The dump as lines between COPY blocks and as large slices inside them, with room to
    give back what a slice read past a block's end."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._pending = ""

    def read(self, size: int) -> str:
        if self._pending:
            text, self._pending = self._pending, ""
            return text
        return self._stream.read(size)

    def give_back(self, text: str) -> None:
        self._pending = text + self._pending

    def __iter__(self) -> Iterator[str]:
        while True:
            if self._pending:
                line, newline, rest = self._pending.partition("\n")
                if newline:
                    self._pending = rest
                    yield line + newline
                    continue
                self._pending = ""
                line += self._stream.readline()
            else:
                line = self._stream.readline()
            if not line:
                return
            yield line


def _copy_block(
    conn: psycopg.Connection[Any],
    table: str,
    columns: list[str],
    dump: _DumpReader,
    keep: Callable[[], float] | None,
    fraction: float | None,
) -> int:
    """Copies lines up to the ``\\.`` terminator; the dump's text format is COPY's own."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FREEZE)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        if fraction is not None and keep is not None:
            return _copy_sampled_lines(copy, table, dump, keep, fraction)
        return _copy_whole_block(copy, table, dump)


def _copy_whole_block(copy: psycopg.Copy, table: str, dump: _DumpReader) -> int:
    """Hands COPY large slices of the block as they are, counting lines, never looping over
    them in Python (a 10M-row block would spend most of its load time there)."""
    rows = 0
    pending = ""
    while chunk := dump.read(_CHUNK_CHARS):
        text = pending + chunk
        # The terminator is a line of its own: look for it only up to the last full line.
        complete, newline, pending = text.rpartition("\n")
        block = complete + newline
        if block.startswith("\\.\n"):
            end = 0
        else:
            found = block.find("\n\\.\n")
            end = found + 1 if found >= 0 else -1
        if end >= 0:
            body = block[:end]
            copy.write(body)
            rows += body.count("\n")
            dump.give_back(block[end + len("\\.\n") :] + pending)
            return rows
        copy.write(block)
        rows += block.count("\n")
    if pending == "\\.":  # the terminator as the file's last line, without a newline
        return rows
    raise InvalidDump(f"the COPY block of {table} has no terminating '\\.' line")


def _copy_sampled_lines(
    copy: psycopg.Copy, table: str, dump: _DumpReader, keep: Callable[[], float], fraction: float
) -> int:
    rows = 0
    buffer: list[str] = []
    size = 0
    for line in dump:
        if line.startswith("\\."):
            break
        if keep() >= fraction:
            continue
        buffer.append(line)
        size += len(line)
        rows += 1
        if size >= _CHUNK_CHARS:
            copy.write("".join(buffer))
            buffer.clear()
            size = 0
    else:
        raise InvalidDump(f"the COPY block of {table} has no terminating '\\.' line")
    if buffer:
        copy.write("".join(buffer))
    return rows
