"""Fixtures of the tests that ingest through the API: the small port world and an app on it.
A module that needs other settings (S3, a stand-in ECS agent) defines its own ``settings``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.settings import Settings
from tests.ingest_helpers import ingest_settings, seed_ports


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    seed_ports(database_url)
    return ingest_settings(database_url, tmp_path / "store")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
