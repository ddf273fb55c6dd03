"""Streaming validation of batch rows, without a database."""

from __future__ import annotations

from rates.ingest.formats import RowValidator, ValidationReport, csv_copy_lines


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
