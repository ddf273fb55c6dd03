"""Hostile rows and payloads end in a report naming line and field, never in an exception."""

from __future__ import annotations

import gzip
import io
import tracemalloc
from collections.abc import Iterator

import orjson
import pytest

from rates.days import parse_day
from rates.ingest.formats import RowValidator, ValidationReport, copy_lines, excerpt
from rates.ingest.payload import PayloadProblem, PayloadReader, blocks_of_lines, lines

HEADER = b"orig_code,dest_code,day,price\n"
PORTS = ["AAAAA", "BBBBB"]


def check(
    body: bytes,
    fmt: str = "csv",
    *,
    max_line_bytes: int = 1 << 16,
    max_total_bytes: int = 1 << 30,
    compression: str = "none",
) -> ValidationReport:
    report = ValidationReport()
    validator = RowValidator(PORTS, report, batch_id=1)
    reader = PayloadReader(io.BytesIO(body), compression, max_total_bytes)
    for _ in copy_lines(fmt, lines(reader, max_line_bytes), validator, report):  # type: ignore[arg-type]
        pass
    return report


def first_error(report: ValidationReport) -> tuple[int, str]:
    assert not report.ok
    return report.errors[0]["line"], report.errors[0]["field"]


def test_reports_survive_a_round_trip_through_jsonb_text_rules() -> None:
    """NUL and other control characters in any field reach the report escaped, never raw
    (PostgreSQL's jsonb refuses \\u0000), and quoted input is cut to a short excerpt."""
    body = (
        HEADER
        + b"AA\x00AA,BBBBB,2021-\x1b01-01,1\x7f\n"
        + b"AAAAA,BBBBB,2021-01-01,"
        + b"x" * 5000
        + b"\n"
    )
    report = check(body)
    text = orjson.dumps(report.to_dict()).decode()
    assert "\\u0000" not in text and "\\u001b" not in text and "\\u007f" not in text
    assert [(e["line"], e["field"]) for e in report.errors] == [
        (2, "orig_code"),
        (2, "day"),
        (2, "price"),
        (3, "price"),
    ]
    assert "AA\\x00AA" in report.errors[0]["reason"]
    assert all(len(e["reason"]) < 120 for e in report.errors)


def test_an_ndjson_key_with_control_characters_is_reported_escaped() -> None:
    """An unexpected key holding NUL is named in the report as an escaped excerpt."""
    row = {"orig_code": "AAAAA", "dest_code": "BBBBB", "day": "2021-01-01", "price": 5, "a\x00b": 1}
    report = check(orjson.dumps(row) + b"\n", "ndjson")
    assert first_error(report) == (1, "a\\x00b")


@pytest.mark.parametrize(
    "price", [b"9" * 6000, b"0" * 6000 + b"1" * 11, b"-" + b"9" * 6000, b"1" * 5000 + b".5"]
)
def test_numbers_of_any_length_are_reported_not_raised(price: bytes) -> None:
    """A price of thousands of digits (Python's int() refuses past 4,300) is a price problem."""
    report = check(HEADER + b"AAAAA,BBBBB,2021-01-01," + price + b"\n")
    assert first_error(report) == (2, "price")
    assert len(report.errors[0]["reason"]) < 80


def test_leading_zeros_do_not_count_towards_a_price_length() -> None:
    """Six thousand leading zeros in front of 7 still make the valid price 7."""
    report = ValidationReport()
    validator = RowValidator(PORTS, report, batch_id=1)
    line = validator.check(
        2,
        {
            "orig_code": "AAAAA",
            "dest_code": "BBBBB",
            "day": "2021-01-01",
            "price": "0" * 6000 + "7",
        },
    )
    assert line == "AAAAA\tBBBBB\t2021-01-01\t7\t1\n"


@pytest.mark.parametrize(
    "day",
    [
        "2021-W01-1",
        "20210104",
        "2021-01-04T00:00",
        " 2021-01-04",
        "2021-01-04 ",
        "2021-1-04",
        "\uff12\uff10\uff12\uff11-01-04",
        "2021-01-0\u0661",
        "0000-01-01",
        "2021-02-30",
        "+2021-01-4",
    ],
)
def test_only_exact_yyyy_mm_dd_days_are_dates(day: str) -> None:
    """ISO week dates, basic forms, times, padding and non-ASCII digits are not days."""
    assert parse_day(day) is None
    report = check(HEADER + b"AAAAA,BBBBB," + day.encode() + b",5\n")
    assert first_error(report) == (2, "day")


def test_a_real_day_parses() -> None:
    """The one accepted form gives its date."""
    assert str(parse_day("2024-02-29")) == "2024-02-29"


def test_a_line_over_the_limit_is_reported_as_soon_as_it_passes() -> None:
    """An endless line is reported on its own line number once it passes the limit, after
    reading little more than the limit (not the whole line)."""

    class Endless(io.RawIOBase):
        served = 0

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            if self.served == 0:
                data = HEADER + b"AAAAA,BBBBB,2021-01-01,5\n"
                buffer[: len(data)] = data
                self.served += len(data)
                return len(data)
            buffer[:] = b"x" * len(buffer)
            self.served += len(buffer)
            return len(buffer)

    stream = Endless()
    report = ValidationReport()
    validator = RowValidator(PORTS, report, batch_id=1)
    reader = PayloadReader(stream, "none", 1 << 40)  # type: ignore[arg-type]
    for _ in copy_lines("csv", lines(reader, 4096, chunk_bytes=1024), validator, report):
        pass
    assert first_error(report) == (3, "row")
    assert "RATES_MAX_LINE_BYTES" in report.errors[0]["reason"]
    assert report.to_dict()["truncated"] is True
    assert stream.served < 16 * 1024


def test_a_complete_line_over_the_limit_inside_one_chunk_is_reported() -> None:
    """A long line read within a single chunk is caught as well as one spanning chunks."""
    report = check(HEADER + b"A" * 5000 + b"\nAAAAA,BBBBB,2021-01-01,5\n", max_line_bytes=4096)
    assert first_error(report) == (2, "row")


def test_decompressed_size_past_the_limit_is_reported_on_its_line() -> None:
    """A gzip payload expanding past the decompressed limit is rejected naming the line
    where the limit was passed, field ``file``."""
    body = gzip.compress(HEADER + b"AAAAA,BBBBB,2021-01-01,5\n" * 1000)
    report = check(body, compression="gzip", max_total_bytes=len(HEADER) + 25 * 10 + 3)
    assert first_error(report) == (12, "file")
    assert "RATES_MAX_BATCH_DECOMPRESSED_BYTES" in report.errors[0]["reason"]


@pytest.mark.parametrize(
    "body",
    [
        gzip.compress(HEADER + b"AAAAA,BBBBB,2021-01-01,5\n" * 100)[:-30],  # cut short
        gzip.compress(HEADER) + b"garbage after the member",
        gzip.compress(HEADER)[:20] + b"\x00" * 50 + gzip.compress(HEADER)[70:],  # corrupt
    ],
    ids=["truncated", "trailing garbage", "corrupt"],
)
def test_a_broken_gzip_stream_is_a_file_problem(body: bytes) -> None:
    """A gzip stream that is corrupt or cut short is reported (field ``file``), not raised."""
    report = check(body, compression="gzip")
    assert report.errors[-1]["field"] == "file"
    assert "gzip" in report.errors[-1]["reason"]


def test_the_plain_lane_stops_at_an_unfinished_line_over_the_limit() -> None:
    """Blocks of whole lines never carry more than the line limit over to the next block."""
    reader = PayloadReader(io.BytesIO(HEADER + b"x" * 100_000), "none", 1 << 30)
    with pytest.raises(PayloadProblem) as raised:
        list(blocks_of_lines(reader, 1024, 4096))
    assert (raised.value.line, raised.value.field) == (2, "row")


def test_distinct_bad_values_do_not_grow_memory() -> None:
    """200k rows, each with a distinct 1 KB non-date, validate in a few MB: the day cache
    and the report are bounded."""

    def rows() -> Iterator[bytes]:
        yield HEADER.strip()
        for i in range(200_000):
            yield b"AAAAA,BBBBB," + str(i).encode().rjust(1024, b"x") + b",5"

    report = ValidationReport()
    validator = RowValidator(PORTS, report, batch_id=1)
    tracemalloc.start()
    for _ in copy_lines("csv", rows(), validator, report):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.invalid_rows == 200_000 and len(report.errors) == 100
    assert peak < 20 * 1024**2


def test_many_lines_of_bad_utf8_are_each_reported_once() -> None:
    """Invalid UTF-8 marks exactly its own row, and is forgotten once that row is read."""
    body = (
        HEADER
        + b"AAAAA,BBBBB,2021-01-01,5\n"
        + b"AAAAA,BBBBB,\xff,5\n" * 3
        + b"AAAAA,BBBBB,2021-01-01,5\n"
    )
    report = check(body)
    assert [(e["line"], e["field"]) for e in report.errors] == [(3, "row"), (4, "row"), (5, "row")]
    assert report.invalid_rows == 3


def test_excerpts_are_short_and_printable() -> None:
    """An excerpt of hostile text is at most a few dozen characters, with escapes."""
    assert excerpt("a\x00" * 1000).startswith("a\\x00a\\x00")
    assert len(excerpt("y" * 10_000)) <= 43
