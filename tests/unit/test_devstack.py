"""Finding PostgreSQL's binaries, and the message when there are none."""

from __future__ import annotations

from pathlib import Path

import pytest

from rates import devstack


def test_missing_binaries_say_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With nothing on PATH and no distribution folder, the error names the install commands."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(devstack, "DISTRIBUTION_BIN_GLOBS", (str(tmp_path / "none/*/bin"),))
    with pytest.raises(devstack.DevstackError) as raised:
        devstack.find_postgres_bin_dir()
    message = str(raised.value)
    assert "apt-get install postgresql" in message
    assert "RATES_DATABASE_URL" in message


def test_newest_distribution_version_is_preferred(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Among /usr/lib/postgresql/<version>/bin folders, the highest version wins."""
    for version in ("9", "15", "13"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        for binary in ("initdb", "pg_ctl", "postgres"):
            (folder / binary).touch()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(devstack, "DISTRIBUTION_BIN_GLOBS", (str(tmp_path / "*/bin"),))
    assert devstack.find_postgres_bin_dir() == tmp_path / "15" / "bin"
