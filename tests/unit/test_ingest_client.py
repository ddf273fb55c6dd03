"""The `rates ingest` client commands, without a server."""

from __future__ import annotations

import subprocess
import sys


def test_cli_reports_an_unreachable_api_in_one_line() -> None:
    """`rates ingest status` against a closed port exits 1 naming the URL, without a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "rates", "ingest", "status", "1", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "cannot reach the rates API at http://127.0.0.1:9/batches/1" in result.stderr
    assert "Traceback" not in result.stderr
