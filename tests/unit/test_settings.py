"""Settings come from RATES_* variables and *_FILE secrets, validated with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rates.ingest.watchdog import heartbeat_interval_s
from rates.settings import Settings, SettingsFileError


def test_defaults_run_locally_without_any_configuration() -> None:
    """With nothing set, the service listens on loopback and has no database configured."""
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.max_range_days == 366
    assert settings.conninfo() is None


def test_environment_variables_use_the_rates_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """RATES_PORT and friends configure the fields of the same name."""
    monkeypatch.setenv("RATES_PORT", "9001")
    monkeypatch.setenv("RATES_MAX_RANGE_DAYS", "31")
    settings = Settings()
    assert (settings.port, settings.max_range_days) == (9001, 31)


def test_secret_is_read_from_the_file_named_by_the_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """RATES_DB_PASSWORD_FILE supplies the password, newline stripped, and it is never printed."""
    secret = tmp_path / "password"
    secret.write_text("s3cret-value\n")
    monkeypatch.setenv("RATES_DB_HOST", "db.internal")
    monkeypatch.setenv("RATES_DB_PASSWORD_FILE", str(secret))
    settings = Settings()
    assert settings.db_password is not None
    assert settings.db_password.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(settings)
    assert "password=s3cret-value" in (settings.conninfo() or "")


def test_plain_variable_wins_over_the_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An explicit RATES_X beats RATES_X_FILE."""
    secret = tmp_path / "url"
    secret.write_text("postgresql://from-file/db")
    monkeypatch.setenv("RATES_DATABASE_URL_FILE", str(secret))
    monkeypatch.setenv("RATES_DATABASE_URL", "postgresql://from-env/db")
    assert Settings().conninfo() == "postgresql://from-env/db"


def test_unreadable_secret_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A *_FILE variable naming a missing file names the variable and the path."""
    monkeypatch.setenv("RATES_DB_PASSWORD_FILE", "/nonexistent/secret")
    with pytest.raises(SettingsFileError, match="RATES_DB_PASSWORD_FILE=/nonexistent/secret"):
        Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RATES_PORT", "eighty"),
        ("RATES_PORT", "70000"),
        ("RATES_DATABASE_URL", "mysql://nope"),
        ("RATES_LOG_FORMAT", "xml"),
        ("RATES_MAX_RANGE_DAYS", "0"),
    ],
)
def test_invalid_values_are_rejected_at_start_up(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """Bad configuration fails when Settings are built, not at first use."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()


def test_conninfo_is_assembled_from_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """RATES_DB_HOST & co. (how ECS hands over an RDS secret) build a libpq string."""
    monkeypatch.setenv("RATES_DB_HOST", "db.internal")
    monkeypatch.setenv("RATES_DB_NAME", "prices")
    monkeypatch.setenv("RATES_DB_USER", "rates_api")
    info = Settings().conninfo() or ""
    assert "host=db.internal" in info
    assert "dbname=prices" in info
    assert "user=rates_api" in info


def test_the_read_host_takes_the_writers_other_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """RATES_READ_DB_HOST (Aurora's reader endpoint) connects like the writer, on that host;
    ECS_AGENT_URI, which ECS sets itself, is read without the prefix."""
    for name, value in {
        "RATES_DB_HOST": "writer.example",
        "RATES_DB_USER": "rates_api",
        "RATES_DB_PASSWORD": "s3cret",
        "RATES_READ_DB_HOST": "reader.example",
        "ECS_AGENT_URI": "http://169.254.170.2/api/task",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    read = settings.read_conninfo() or ""
    assert "host=reader.example" in read and "user=rates_api" in read and "s3cret" in read
    assert "host=writer.example" in (settings.conninfo() or "")
    assert settings.ecs_agent_uri == "http://169.254.170.2/api/task"
    monkeypatch.delenv("RATES_READ_DB_HOST")
    assert Settings().read_conninfo() is None


def test_stale_after_defaults_to_two_minutes_and_refuses_less_than_five_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RATES_WORKER_STALE_AFTER_S is 120 s by default (a heartbeat every 10 s), at least 5 s."""
    assert Settings().worker_stale_after_s == 120
    assert heartbeat_interval_s(120) == 10 and heartbeat_interval_s(5) == 1.25
    monkeypatch.setenv("RATES_WORKER_STALE_AFTER_S", "4")
    with pytest.raises(ValidationError, match="worker_stale_after_s"):
        Settings()
