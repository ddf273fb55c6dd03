"""Reading and validating batch payloads as a stream: CSV or NDJSON, optionally gzip.

Row by row: each row is checked as it streams past (fields, encoding, known ports, real dates,
positive integer prices) and, while no row has failed, turned straight into a line of COPY
text for PostgreSQL; problems are reported by line and field. Nothing is held in memory but
the current line (at most RATES_MAX_LINE_BYTES), the set of known ports, a bounded cache of
days and the first ``max_errors`` problems, so a batch of any size validates in constant
memory and in the same single pass that loads it. Reports quote input only as short excerpts
with control characters escaped: they are stored as jsonb, which cannot hold ``\u0000``.

Most CSV batches are plain (unquoted fields, ISO dates, whole prices), and for those a faster
lane hands PostgreSQL whole blocks of the payload: a regular expression vouches for each
block's shape, a set check for its ports, and COPY's own parser for the dates. Whatever that
lane does not vouch for goes down the row-by-row path, which reports it.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from rates.days import parse_day
from rates.ingest.payload import PayloadProblem, PayloadReader, blocks_of_lines

Format = Literal["csv", "ndjson"]
Compression = Literal["none", "gzip"]

FIELDS = ("orig_code", "dest_code", "day", "price")
HEADER = ",".join(FIELDS)
MAX_PRICE = 2**31 - 1  # prices are PostgreSQL integers
_MAX_PRICE_DIGITS = len(str(MAX_PRICE))
# Distinct day strings remembered with their verdict; cleared when full, so a batch of
# distinct non-dates costs no memory.
_DAY_CACHE_SIZE = 4096
_EXCERPT_CHARS = 40
# C0 and C1 control characters, DEL, and lone surrogates (not encodable as UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

CONTENT_TYPES: dict[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/x-jsonlines": "ndjson",
}
SUFFIXES: dict[str, Format] = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def format_of_name(name: str) -> tuple[Format, Compression] | None:
    """The format and compression a file or object name implies, e.g. ``prices.csv.gz``."""
    compression: Compression = "none"
    if name.endswith(".gz"):
        name, compression = name[:-3], "gzip"
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix):
            return fmt, compression
    return None


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, limit: int = 1000) -> str:
    """``text`` cut to ``limit`` characters with control characters escaped (``\\x00``):
    storable as PostgreSQL text and jsonb, and harmless in a terminal."""
    cut = text[:limit]
    return _UNPRINTABLE.sub(_escape, cut) + ("..." if len(text) > limit else "")


def excerpt(value: object) -> str:
    """A short, printable quote of input for a report."""
    return printable(value if isinstance(value, str) else str(value), _EXCERPT_CHARS)


@dataclass
class ValidationReport:
    """How many rows are invalid and the first ``max_errors`` problems, in line order.

    Lines count from 1 and, for CSV, include the header; a problem with the whole file (a
    wrong header, no rows at all) is reported on line 1."""

    max_errors: int = 100
    invalid_rows: int = 0
    rows: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    omitted: int = 0
    stopped: bool = False  # reading stopped at a problem; later lines were not checked

    def add(self, line: int, field_name: str, reason: str) -> None:
        if len(self.errors) < self.max_errors:
            self.errors.append(
                {"line": line, "field": excerpt(field_name), "reason": printable(reason, 300)}
            )
        else:
            self.omitted += 1

    def stop(self, problem: PayloadProblem) -> None:
        """Records a problem that ends reading, e.g. a line over the length limit; listed
        even past ``max_errors``, as the last entry, since it says why the rest is unread."""
        self.invalid_rows += 1
        self.errors.append(
            {"line": problem.line, "field": problem.field, "reason": printable(problem.reason)}
        )
        self.stopped = True

    @property
    def ok(self) -> bool:
        return self.invalid_rows == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "invalid_rows": self.invalid_rows,
            "errors": self.errors,
            "truncated": self.omitted > 0 or self.stopped,
        }


def copy_escape(value: str) -> str:
    """Escapes a value for COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


class RowValidator:
    """Checks rows against the known ports and renders valid ones as COPY lines."""

    def __init__(self, ports: Iterable[str], report: ValidationReport, batch_id: int) -> None:
        self._ports: Mapping[str, str] = {code: copy_escape(code) for code in ports}
        self._report = report
        self._suffix = f"\t{batch_id}\n"
        self._days: dict[str, str | None] = {}

    def check(self, line: int, values: Mapping[str, object]) -> str | None:
        """The COPY line for a valid row; None (and the problems recorded) otherwise."""
        problems = 0
        report = self._report
        codes = []
        for name in ("orig_code", "dest_code"):
            code = values[name]
            if not isinstance(code, str) or code == "":
                problems += 1
                report.add(line, name, "missing value" if code in ("", None) else "not a string")
                continue
            escaped = self._ports.get(code)
            if escaped is None:
                problems += 1
                report.add(line, name, f"unknown port {excerpt(code)}")
            codes.append(escaped)
        day = self._day(values["day"])
        if day is None:
            problems += 1
            report.add(line, "day", f"not a real date as YYYY-MM-DD: {excerpt(values['day'])}")
        price = _price_or_problem(values["price"])
        if isinstance(price, str):
            problems += 1
            report.add(line, "price", price)
        report.rows += 1
        if problems:
            report.invalid_rows += 1
            return None
        return f"{codes[0]}\t{codes[1]}\t{day}\t{price}{self._suffix}"

    def _day(self, value: object) -> str | None:
        if not isinstance(value, str):
            return None
        if value not in self._days:
            if len(self._days) >= _DAY_CACHE_SIZE:
                self._days.clear()
            parsed = parse_day(value)
            self._days[value] = parsed.isoformat() if parsed else None
        return self._days[value]


def _price_or_problem(price: object) -> int | str:
    """The price as an int, or why it is not one. Digits are counted before converting:
    Python refuses to turn more than 4,300 of them into an int."""
    if isinstance(price, str):
        if price == "":
            return "missing value"
        sign, digits = (price[0], price[1:]) if price[:1] in "+-" else ("", price)
        if not (digits.isascii() and digits.isdigit()):
            try:
                float(price)
            except ValueError:
                return f"not a number: {excerpt(price)}"
            return f"not an integer: {excerpt(price)}"
        significant = digits.lstrip("0")
        if len(significant) > _MAX_PRICE_DIGITS:
            problem = "must be positive" if sign == "-" else "too large"
            return f"{problem}: {excerpt(price)}"
        value = int(sign + (significant or "0"))
    elif isinstance(price, bool) or not isinstance(price, int):
        if isinstance(price, float):
            return f"not an integer: {price}"
        return "missing value" if price is None else "not a number"
    else:
        value = price
    if value <= 0:
        return f"must be positive: {value}"
    if value > MAX_PRICE:
        return f"too large: {value}"
    return value


def _decoded_lines(lines: Iterable[bytes], bad_encoding: set[int]) -> Iterator[str]:
    """Decodes UTF-8 line by line, remembering which physical lines were not UTF-8 (the
    reader clears them row by row)."""
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_encoding.add(number)
            text = raw.decode("utf-8", "replace")
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text


def csv_header_problem(header: list[str]) -> str | None:
    """Why a parsed CSV header is not ours, or None; checked at upload and by the worker."""
    if [name.strip() for name in header] != list(FIELDS):
        return f"expected {HEADER}, got {','.join(header)[:100]}"
    return None


def csv_header_line_problem(line: bytes) -> str | None:
    """The same check on the payload's raw first line (a UTF-8 BOM allowed)."""
    text = line.decode("utf-8", "replace").removeprefix("\ufeff")
    try:
        return csv_header_problem(next(csv.reader([text]), []))
    except csv.Error as exc:
        return f"malformed CSV header: {exc}"


def csv_copy_lines(
    lines: Iterable[bytes], validator: RowValidator, report: ValidationReport
) -> Iterator[str]:
    """COPY lines of the valid rows of a CSV payload; problems land in ``report``."""
    bad_encoding: set[int] = set()
    reader = csv.reader(_decoded_lines(lines, bad_encoding), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            report.invalid_rows += 1
            report.add(1, "header", f"the batch is empty; expected the header {HEADER}")
            return
        if (problem := csv_header_problem(header)) is not None:
            report.invalid_rows += 1
            report.add(1, "header", problem)
            return
        bad_encoding.clear()
        for row in reader:
            line = reader.line_num
            # The reader pulls exactly the lines of this row: any bad one is in this row.
            not_utf8 = bool(bad_encoding)
            bad_encoding.clear()
            if not row:
                continue  # blank lines carry no data
            if not_utf8:
                report.rows += 1
                report.invalid_rows += 1
                report.add(line, "row", "not valid UTF-8")
                continue
            if len(row) != len(FIELDS):
                report.rows += 1
                report.invalid_rows += 1
                if len(row) < len(FIELDS):
                    missing = FIELDS[len(row)]
                    report.add(line, missing, f"missing field ({len(row)} of {len(FIELDS)})")
                else:
                    report.add(line, "row", f"{len(row)} fields, expected {len(FIELDS)}")
                continue
            copy_line = validator.check(line, dict(zip(FIELDS, row, strict=True)))
            if copy_line is not None and report.ok:
                yield copy_line
    except csv.Error as exc:
        report.invalid_rows += 1
        report.add(reader.line_num, "row", f"malformed CSV: {exc}")
    if report.rows == 0 and report.ok:
        report.invalid_rows += 1
        report.add(1, "file", "the batch holds no rows")


def ndjson_copy_lines(
    lines: Iterable[bytes], validator: RowValidator, report: ValidationReport
) -> Iterator[str]:
    """COPY lines of the valid rows of an NDJSON payload; problems land in ``report``."""
    for line, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            report.rows += 1
            report.invalid_rows += 1
            reason = "not valid UTF-8" if _not_utf8(raw) else f"not valid JSON: {exc}"
            report.add(line, "row", reason[:200])
            continue
        if not isinstance(obj, dict):
            report.rows += 1
            report.invalid_rows += 1
            report.add(line, "row", "not a JSON object")
            continue
        extra = [key for key in obj if key not in FIELDS]
        missing = [name for name in FIELDS if name not in obj]
        if extra or missing:
            report.rows += 1
            report.invalid_rows += 1
            for name in missing:
                report.add(line, name, "missing field")
            for key in extra:
                report.add(line, str(key), "unexpected field")
            continue
        if isinstance(obj["price"], str):
            report.rows += 1
            report.invalid_rows += 1
            report.add(line, "price", "must be a JSON integer, not a string")
            continue
        copy_line = validator.check(line, obj)
        if copy_line is not None and report.ok:
            yield copy_line
    if report.rows == 0 and report.ok:
        report.invalid_rows += 1
        report.add(1, "file", "the batch holds no rows")


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# Lines whose four fields the row-by-row path would accept as they are, given known ports and
# a real date: no quotes (so no CSV escaping), an ISO date, a price of 1 to 999,999,999 (within
# PostgreSQL's integer range).
_PLAIN_ROWS = re.compile(rb'(?:[^,"\r\n]+,[^,"\r\n]+,\d{4}-\d\d-\d\d,[1-9]\d{0,8}\n)*')
_ROUTES = re.compile(rb"(?m)^([^,\n]+),([^,\n]+),")


class NotPlain(Exception):
    """The payload needs the row-by-row path (which will say what, if anything, is wrong)."""


def plain_csv_copy_data(
    stream: PayloadReader,
    ports: Collection[str],
    batch_id: int,
    report: ValidationReport,
    max_line_bytes: int,
    block_bytes: int = 1 << 18,
) -> Iterator[bytes]:
    """Blocks of COPY data (CSV format, batch id appended to each line) for a plain CSV
    payload, counting its rows in ``report``; raises NotPlain at the first block it cannot
    vouch for, PayloadProblem at a limit. Dates are only shaped here: COPY rejects an
    impossible one (a DataError)."""
    known = {code.encode() for code in ports}
    suffix = f",{batch_id}\n".encode()
    blocks = blocks_of_lines(stream, block_bytes, max_line_bytes)
    first = next(blocks, b"")
    header, _, first = first.partition(b"\n")
    if csv_header_line_problem(header.removesuffix(b"\r")) is not None:
        raise NotPlain("header")
    for block in itertools.chain([first], blocks):
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        if not _PLAIN_ROWS.fullmatch(block):
            raise NotPlain("a row is not plain")
        for route in set(_ROUTES.findall(block)):
            if not known.issuperset(route):
                raise NotPlain("unknown port")
        report.rows += block.count(b"\n")
        yield block.replace(b"\n", suffix)
    if report.rows == 0:
        raise NotPlain("no rows")


def copy_lines(
    fmt: Format, lines: Iterable[bytes], validator: RowValidator, report: ValidationReport
) -> Iterator[str]:
    """COPY lines of the valid rows; a PayloadProblem from reading (a limit passed, corrupt
    gzip) ends the report there."""
    parse = csv_copy_lines if fmt == "csv" else ndjson_copy_lines
    try:
        yield from parse(lines, validator, report)
    except PayloadProblem as problem:
        report.stop(problem)
