"""The JSON log format: one object per line, whatever the values, from structlog and from the
standard library's loggers alike."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
import structlog

from rates.observability.logs import configure_logging
from rates.settings import Settings


@pytest.fixture
def json_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(Settings(log_format="json", log_level="info"))
    yield stream
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level


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
