"""ECS task scale-in protection against a real HTTP server standing in for the ECS agent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import psycopg
import pytest
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.ingest import batches as batch_sql
from rates.ingest.task_protection import STATE_PATH
from rates.ingest.worker import Worker
from rates.settings import Settings
from tests.ingest_helpers import TOKEN, csv_rows, ingest_settings, seed_ports

# ECS_AGENT_URI is the agent's address plus a path of the task's own.
AGENT_PREFIX = "/api/0123456789abcdef-task"


class StandInAgent:
    """The ECS agent's task-protection endpoint: keeps the task's protection state and, for
    each change, what the database says about every batch at that moment."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.protected = False
        self.changes: list[tuple[bool, dict[int, str]]] = []
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != AGENT_PREFIX + STATE_PATH or not isinstance(
                    body.get("ProtectionEnabled"), bool
                ):
                    self._answer(400, {"error": {"Code": "InvalidParameterValue"}})
                    return
                agent.record(body["ProtectionEnabled"], body.get("ExpiresInMinutes"))
                self._answer(200, {"protection": {"ProtectionEnabled": agent.protected}})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{AGENT_PREFIX}"
        self.expiries: list[int | None] = []

    def record(self, enabled: bool, expires_in_minutes: int | None) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            statuses = dict(
                conn.execute(
                    f"SELECT id, status FROM ({batch_sql.BATCH_VIEW}) AS b ORDER BY id"
                ).fetchall()
            )
        self.protected = enabled
        self.changes.append((enabled, statuses))
        self.expiries.append(expires_in_minutes)


@pytest.fixture
def agent(database_url: str) -> Iterator[StandInAgent]:
    stand_in = StandInAgent(database_url)
    thread = threading.Thread(target=stand_in.server.serve_forever, daemon=True)
    thread.start()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, agent: StandInAgent) -> Settings:
    seed_ports(database_url)
    return ingest_settings(
        database_url, tmp_path / "store", ecs_agent_uri=agent.url, worker_protection_minutes=90
    )


def submit(settings: Settings, body: bytes) -> int:
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/batches",
            content=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
        )
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def test_a_task_is_protected_exactly_while_it_applies_a_batch(
    settings: Settings, agent: StandInAgent
) -> None:
    """The worker protects its task once it holds a batch and clears it after the batch counts;
    an idle worker never asks for protection."""
    Worker(settings, name="idle").run(once=True)
    assert agent.changes == [], "an idle worker protected its task"
    batch_id = submit(settings, csv_rows(10).encode())
    assert Worker(settings, name="busy").run(once=True) == 1
    assert agent.changes == [
        (True, {batch_id: "processing"}),
        (False, {batch_id: "succeeded"}),
    ]
    assert agent.expiries[0] == 90 and not agent.protected


def test_protection_is_cleared_when_the_batch_fails(
    settings: Settings, agent: StandInAgent
) -> None:
    """A batch whose attempt fails (its payload is gone from storage) still clears the
    protection, so the task can be scaled in or replaced again."""
    batch_id = submit(settings, csv_rows(5).encode())
    with psycopg.connect(settings.conninfo() or "") as conn:
        (uri,) = conn.execute(
            "SELECT storage_uri FROM batches WHERE id = %s", [batch_id]
        ).fetchone()  # type: ignore[misc]
    Path(unquote(urlparse(uri).path)).unlink()
    assert Worker(settings, name="unlucky").run(once=True) == 1
    assert [enabled for enabled, _ in agent.changes] == [True, False]
    assert agent.changes[0][1] == {batch_id: "processing"}
    assert agent.changes[1][1] == {batch_id: "queued"}  # to be retried, unprotected meanwhile
    assert not agent.protected


def test_an_agent_that_refuses_does_not_stop_the_batch(
    settings: Settings, agent: StandInAgent
) -> None:
    """Protection is a help, not a precondition: with the agent unreachable the batch is still
    applied."""
    agent.server.shutdown()
    agent.server.server_close()
    batch_id = submit(settings, csv_rows(3).encode())
    Worker(settings, name="alone").run(once=True)
    with psycopg.connect(settings.conninfo() or "") as conn:
        status = conn.execute(
            f"SELECT status FROM ({batch_sql.BATCH_VIEW}) AS b WHERE id = %s", [batch_id]
        ).fetchone()
    assert status == ("succeeded",)
