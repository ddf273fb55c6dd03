"""The `rates` command line's own texts."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from rates.cli import app


def test_help_shows_bracketed_defaults() -> None:
    """Help texts are plain: "[default: ...]" is shown, not swallowed as a markup tag."""
    result = CliRunner().invoke(app, ["up", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "[default: demo data]" in result.output
    assert "[default: CPU count, at least 2]" in result.output


@pytest.mark.parametrize("command", [["serve"], ["db", "migrate"]])
def test_no_database_configured_is_one_error_line(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without any database settings each command says what to set, exits 1 and starts
    nothing (`serve` used to boot gunicorn, then print a traceback per worker)."""
    for name in [n for n in os.environ if n.startswith("RATES_")]:
        monkeypatch.delenv(name)
    # Logging set up inside CliRunner would write to its stream, closed after the call.
    monkeypatch.setattr("rates.cli.configure_logging", lambda settings: None)
    result = CliRunner().invoke(app, command, terminal_width=200)
    assert result.exit_code == 1
    assert result.output.startswith("error: no database configured: set RATES_DATABASE_URL")
    assert "Traceback" not in result.output
