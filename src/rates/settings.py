"""Typed configuration: environment variables with the prefix ``RATES_``, secrets also from files.

Every field ``x`` is read from ``RATES_X``; any field can instead come from the file named by
``RATES_X_FILE`` (how Docker/Kubernetes/ECS hand over secrets), trailing newline stripped.
Settings are built by the entry points (CLI, app factory), never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from psycopg.conninfo import make_conninfo
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "RATES_"


class SettingsFileError(ValueError):
    """A ``RATES_*_FILE`` variable names a file that cannot be read."""


class _FileVariablesSource(PydanticBaseSettingsSource):
    """Reads ``RATES_<FIELD>_FILE`` variables: the value is the content of the named file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{ENV_PREFIX}{field_name.upper()}_FILE"
        path = os.environ.get(variable)
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise SettingsFileError(
                f"{variable}={path}: cannot read the file ({exc.strerror})"
            ) from exc

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                values[name] = value
        return values


def default_workers() -> int:
    """One async worker process per core: each saturates a core on its own."""
    return max(2, os.cpu_count() or 1)


class Settings(BaseSettings):
    """All configuration of the service; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # Database: a full URL, or its parts (how ECS hands over an RDS secret), or neither, in which
    # case `rates up` starts a private PostgreSQL in `data_dir`.
    database_url: SecretStr | None = None
    db_host: str | None = None
    db_port: int = 5432
    db_name: str = "rates"
    db_user: str = "rates"
    db_password: SecretStr | None = None
    # Where /rates reads: a replica (Aurora's reader endpoint). A full URL, or a host that takes
    # the writer's port, name, user and password. Unset: the writer serves reads too.
    read_database_url: SecretStr | None = None
    read_db_host: str | None = None
    # Passwords of the login roles `rates db grant-logins` creates (migrate task only).
    api_db_password: SecretStr | None = None
    worker_db_password: SecretStr | None = None
    db_pool_min_size: int = Field(default=2, ge=1)
    db_pool_max_size: int = Field(default=8, ge=1)
    db_pool_timeout_s: float = Field(default=2.0, gt=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)

    # HTTP server
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default_factory=default_workers, ge=1)
    graceful_timeout_s: float = Field(default=30.0, gt=0)
    max_range_days: int = Field(default=366, ge=1)
    # Rendered /rates answers kept per API process, reused while the data version holds
    # (api/answers.py); 0 keeps none.
    answer_cache_mb: int = Field(default=32, ge=0)

    # Local stack
    data_dir: Path = Path(".rates")

    # Batch ingestion
    # Bearer tokens: ingest tokens submit, revert and read batches; read tokens only read them.
    ingest_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    batch_read_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    storage_dir: Path | None = None  # default: <data_dir>/batches
    storage_s3_bucket: str | None = None
    storage_s3_prefix: str = "batches"
    storage_s3_endpoint_url: str | None = None
    max_batch_bytes: int = Field(default=2 * 1024**3, ge=1)
    max_reported_errors: int = Field(default=100, ge=1)
    # Limits on what a payload holds once decompressed: past either, the batch is rejected
    # where the limit was passed (a gzip bomb or an endless line costs bounded time and memory).
    max_line_bytes: int = Field(default=64 * 1024, ge=256)
    max_batch_decompressed_bytes: int = Field(default=8 * 1024**3, ge=1)
    worker_poll_interval_s: float = Field(default=5.0, gt=0)
    worker_max_attempts: int = Field(default=3, ge=1)
    worker_retry_delay_s: float = Field(default=10.0, ge=0)
    worker_grace_period_s: float = Field(default=60.0, ge=0)
    # A worker applying a batch stamps a heartbeat every stale_after / 4 (at most 10 s); one
    # silent for longer than this hangs with its batch, and another worker ends its session.
    # At least 5 s, the floor the database function enforces (migration 0013).
    worker_stale_after_s: float = Field(default=120.0, ge=5)
    # Every route read pays one index descent per batch applied and not merged yet. A worker
    # merges when it has nothing to apply; past this many unmerged batches (a queue that never
    # empties) it merges the oldest right after applying one, so that cost stays bounded.
    worker_max_unmerged_batches: int = Field(default=100, ge=1)
    # ECS: the agent's endpoint, which ECS itself sets in every task (not a RATES_ variable);
    # a worker protects its task from scale-in and deploys while it applies a batch.
    ecs_agent_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("ECS_AGENT_URI", "ecs_agent_uri")
    )
    worker_protection_minutes: int = Field(default=120, ge=1, le=2880)

    # Observability
    environment: str = "local"  # dev, staging, prod: the Environment dimension of cloud metrics
    access_log: bool = True
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)  # 0: no metrics endpoint
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # auto: readable on a terminal, one JSON object per line anywhere else (a file, a pipe, a
    # container's log driver), where lines are read by machines.
    log_format: Literal["auto", "console", "json"] = "auto"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values win, then plain variables, then ``*_FILE`` variables."""
        return (init_settings, env_settings, _FileVariablesSource(settings_cls))

    @field_validator("ingest_tokens", "batch_read_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        """Tokens are comma-separated in the environment (and in a *_FILE, one per line too)."""
        if isinstance(value, str):
            return [token.strip() for token in value.replace("\n", ",").split(",") if token.strip()]
        return value

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _url_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgres://", "postgresql://")
        ):
            raise ValueError("must be a postgresql:// URL")
        return value

    def payload_dir(self) -> Path:
        """Where accepted batch payloads are kept when no S3 bucket is configured."""
        return self.storage_dir if self.storage_dir is not None else self.data_dir / "batches"

    def read_conninfo(self) -> str | None:
        """The libpq connection string of the read replica, or None to read from the writer."""
        if self.read_database_url is not None:
            return self.read_database_url.get_secret_value()
        if self.read_db_host is None or self.db_host is None:
            return None
        return self.model_copy(update={"db_host": self.read_db_host}).conninfo()

    def conninfo(self) -> str | None:
        """The libpq connection string, or None when no database is configured."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        if self.db_host is None:
            return None
        return make_conninfo(
            host=self.db_host,
            port=self.db_port,
            dbname=self.db_name,
            user=self.db_user,
            password=self.db_password.get_secret_value() if self.db_password else None,
        )
