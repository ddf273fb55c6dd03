"""The `rates` command line's own texts."""

from __future__ import annotations

from typer.testing import CliRunner

from rates.cli import app


def test_help_shows_bracketed_defaults() -> None:
    """Help texts are plain: "[default: ...]" is shown, not swallowed as a markup tag."""
    result = CliRunner().invoke(app, ["up", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "[default: demo data]" in result.output
    assert "[default: CPU count, at least 2]" in result.output
