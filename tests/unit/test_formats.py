"""Streaming validation of batch rows, without a database."""

from __future__ import annotations

import io

import pytest

from rates.ingest.formats import (
    NotPlain,
    RowValidator,
    ValidationReport,
    csv_copy_lines,
    plain_csv_copy_data,
)
from rates.ingest.payload import PayloadReader


def validate(body: bytes, max_errors: int = 100) -> tuple[list[str], ValidationReport]:
    report = ValidationReport(max_errors=max_errors)
    validator = RowValidator(["AAAAA", "BBBBB"], report, batch_id=7)
    return list(csv_copy_lines(body.splitlines(), validator, report)), report


def test_valid_rows_become_copy_lines_with_the_batch_id() -> None:
    """Each valid row is one tab-separated COPY line ending in the batch id."""
    lines, report = validate(b"orig_code,dest_code,day,price\nAAAAA,BBBBB,2021-01-02,10\n")
    assert lines == ["AAAAA\tBBBBB\t2021-01-02\t10\t7\n"]
    assert report.ok and report.rows == 1


def test_truncated_only_when_problems_were_left_out() -> None:
    """Exactly max_errors problems are all listed (not truncated); one more is truncated."""
    bad = b"orig_code,dest_code,day,price\n" + b"AAAAA,BBBBB,2021-01-02,0\n" * 2
    _, exact = validate(bad, max_errors=2)
    assert exact.to_dict()["truncated"] is False
    assert len(exact.errors) == 2
    _, over = validate(bad + b"AAAAA,BBBBB,2021-01-02,0\n", max_errors=2)
    assert over.to_dict() == {**over.to_dict(), "invalid_rows": 3, "truncated": True}
    assert len(over.errors) == 2


def test_no_copy_line_is_produced_after_the_first_invalid_row() -> None:
    """Once a row fails, later valid rows are validated but never sent to COPY."""
    lines, report = validate(
        b"orig_code,dest_code,day,price\nAAAAA,BBBBB,2021-01-02,10\n"
        b"AAAAA,CCCCC,2021-01-02,10\nAAAAA,BBBBB,2021-01-03,10\n"
    )
    assert len(lines) == 1
    assert report.invalid_rows == 1 and report.rows == 3


def plain(body: bytes, block_bytes: int = 1 << 18) -> tuple[bytes, ValidationReport]:
    report = ValidationReport()
    stream = PayloadReader(io.BytesIO(body), "none", max_total_bytes=1 << 30)
    blocks = plain_csv_copy_data(stream, ["AAAAA", "BBBBB"], 7, report, 1 << 16, block_bytes)
    return b"".join(blocks), report


def test_the_plain_lane_passes_whole_lines_with_the_batch_id() -> None:
    """A BOM, CRLF endings, blocks that cut lines and no final newline all come out as the
    same COPY CSV lines, every row counted once."""
    body = (
        b"\xef\xbb\xbforig_code,dest_code,day,price\r\n"
        + b"AAAAA,BBBBB,2021-01-02,10\r\n" * 50
        + b"BBBBB,AAAAA,2021-12-31,999999999"
    )
    data, report = plain(body, block_bytes=64)
    assert data == b"AAAAA,BBBBB,2021-01-02,10,7\n" * 50 + b"BBBBB,AAAAA,2021-12-31,999999999,7\n"
    assert report.rows == 51 and report.ok


@pytest.mark.parametrize(
    "row",
    [
        b'"AAAAA",BBBBB,2021-01-02,10',  # quoted: CSV escaping is the row-by-row path's job
        b"AAAAA,CCCCC,2021-01-02,10",  # unknown port
        b"AAAAA,BBBBB,2021-1-2,10",  # not ISO
        b"AAAAA,BBBBB,2021-01-02,010",  # leading zero
        b"AAAAA,BBBBB,2021-01-02,1000000000",  # ten digits: may not fit an integer
        b"AAAAA,BBBBB,2021-01-02,-5",
        b"AAAAA,BBBBB,2021-01-02",
        b"AAAAA,BBBBB,2021-01-02,10,11",
        b"",  # a blank line
        b"AAAAA ,BBBBB,2021-01-02,10",  # a space makes it another (unknown) code
    ],
)
def test_anything_unusual_leaves_the_plain_lane(row: bytes) -> None:
    """Every row the lane cannot vouch for sends the batch down the row-by-row path."""
    good = b"AAAAA,BBBBB,2021-01-02,10\n"
    with pytest.raises(NotPlain):
        plain(b"orig_code,dest_code,day,price\n" + good + row + b"\n" + good)


@pytest.mark.parametrize(
    "body", [b"", b"orig_code,dest_code,day,price\n", b"dest_code,orig_code,day,price\n"]
)
def test_an_empty_batch_or_another_header_leaves_the_plain_lane(body: bytes) -> None:
    with pytest.raises(NotPlain):
        plain(body)
