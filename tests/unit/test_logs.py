"""The log formats: JSON is one object per line, whatever the values, from structlog and from
the standard library's loggers alike; the default is readable on a terminal and JSON anywhere
else."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal

import pytest
import structlog

from rates.observability.logs import configure_logging
from rates.settings import Settings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def logged_to(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[io.StringIO, str], None]]:
    """Sets logging up as a process would, writing to the given stderr in the given format."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure(stderr: io.StringIO, log_format: str) -> None:
        monkeypatch.setattr("sys.stderr", stderr)
        configure_logging(Settings(log_format=log_format, log_level="info"))

    yield configure
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def json_lines(logged_to: Callable[[io.StringIO, str], None]) -> io.StringIO:
    stream = io.StringIO()
    logged_to(stream, "json")
    return stream


def test_every_line_is_one_json_object(json_lines: io.StringIO) -> None:
    log = structlog.get_logger("rates.test")
    structlog.contextvars.bind_contextvars(request_id="abc")
    try:
        log.info("request", route="/rates", status=200, duration_ms=2.5, day=date(2021, 1, 2))
        log.warning("odd values", price=Decimal("1.5"), by_port={1: "one"}, thing=object())
        try:
            raise ValueError("bad row")
        except ValueError:
            log.exception("failed")
        logging.getLogger("rates.stdlib").warning("from %s", "logging")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "request",
        "odd values",
        "failed",
        "from logging",
    ]
    request, odd, failed, stdlib = lines
    assert request["request_id"] == "abc" and request["level"] == "info"
    assert request["day"] == "2021-01-02" and request["status"] == 200
    assert odd["by_port"] == {"1": "one"} and odd["thing"].startswith("<object object")
    assert odd["price"] == "Decimal('1.5')"  # structlog's fallback: the repr
    assert "ValueError: bad row" in failed["exception"]
    assert stdlib["level"] == "warning" and "timestamp" in stdlib


@pytest.mark.parametrize(
    ("stderr", "log_format", "as_json"),
    [
        (io.StringIO(), "auto", True),  # a file, a pipe, a container's log driver
        (Terminal(), "auto", False),
        (io.StringIO(), "console", False),
        (Terminal(), "json", True),
    ],
)
def test_the_default_format_is_json_unless_on_a_terminal(
    logged_to: Callable[[io.StringIO, str], None],
    stderr: io.StringIO,
    log_format: str,
    as_json: bool,
) -> None:
    assert Settings().log_format == "auto"
    logged_to(stderr, log_format)
    structlog.get_logger("rates.test").info("request", status=200)
    line = stderr.getvalue().strip()
    if as_json:
        assert json.loads(line)["event"] == "request"
    else:
        assert "request" in line and "status" in line
        with pytest.raises(ValueError):
            json.loads(line)
