"""The CodeDeploy pre-traffic hook (deploy/aws/hooks/pre_traffic.py) lets a deployment through
only when the new task set answers well on the test listener, and reports that to CodeDeploy.

A real HTTP server on a free local port stands in for the load balancer's test listener, and
another for the CodeDeploy API (moto does not implement PutLifecycleEventHookExecutionStatus);
the hook talks to both over HTTP exactly as it does in AWS.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HOOK = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "hooks" / "pre_traffic.py"
QUERY = "date_from=2021-01-01&date_to=2021-01-05&origin=area_1&destination=area_2"
EVENT = {"DeploymentId": "d-ABC123", "LifecycleEventHookExecutionId": "exec-42"}
READY = (200, {"status": "ready", "replica_lag_s": None})
RATES = (200, {"rates": [{"day": "2021-01-05", "price": 1000.0, "count": 3}]})


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pre_traffic", HOOK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


hook = load_hook()


@dataclass
class Listener:
    """What the stand-in test listener answers per path, one answer per request (the last
    answer repeats), and every request it saw."""

    answers: dict[str, list[tuple[int, Any]]]
    seen: list[str] = field(default_factory=list)
    url: str = ""


def serve(handle: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handle(self)

        def do_POST(self) -> None:
            handle(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def reply(request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(payload)))
    request.end_headers()
    request.wfile.write(payload)


@pytest.fixture
def listener() -> Iterator[Listener]:
    state = Listener(answers={"/readyz": [READY], "/rates": [RATES]})

    def handle(request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        state.seen.append(request.path)
        answers = state.answers.get(path, [(404, {"error": "not found"})])
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        reply(request, status, body)

    for url in serve(handle):
        state.url = url
        yield state


@pytest.fixture
def configured(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> Listener:
    monkeypatch.setenv("TEST_LISTENER_URL", listener.url + "/")
    monkeypatch.setenv("RATES_QUERY", "?" + QUERY)
    monkeypatch.setenv("CHECK_ATTEMPTS", "3")
    monkeypatch.setenv("CHECK_INTERVAL_S", "0.01")
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "2")
    return listener


class Verdicts:
    """Records what the hook reports, in place of the CodeDeploy call."""

    def __init__(self) -> None:
        self.reported: list[tuple[str, str, str]] = []

    def __call__(self, deployment_id: str, execution_id: str, status: str) -> None:
        self.reported.append((deployment_id, execution_id, status))


def run_hook() -> tuple[dict[str, Any], Verdicts]:
    verdicts = Verdicts()
    result = hook.handler(EVENT, None, report=verdicts)
    return result, verdicts


def test_healthy_green_tasks_are_reported_succeeded(configured: Listener) -> None:
    """Ready and answering /rates through the test listener: the hook reports Succeeded for
    this deployment's hook execution, after asking /readyz and the configured /rates query."""
    result, verdicts = run_hook()

    assert verdicts.reported == [("d-ABC123", "exec-42", "Succeeded")]
    assert result == {"status": "Succeeded", "problems": []}
    assert configured.seen == ["/readyz", f"/rates?{QUERY}"]


def test_not_ready_green_tasks_are_reported_failed(configured: Listener) -> None:
    """A /readyz that stays 503 (database unreachable) through every try reports Failed."""
    configured.answers["/readyz"] = [(503, {"error": {"code": "not_ready"}})]

    result, verdicts = run_hook()

    assert verdicts.reported == [("d-ABC123", "exec-42", "Failed")]
    assert result["problems"] == ['/readyz answered 503 {"error": {"code": "not_ready"}}']
    assert configured.seen.count("/readyz") == 3


def test_a_failing_rates_query_is_reported_failed(configured: Listener) -> None:
    """Ready tasks whose /rates answers 500 (e.g. a missing grant) still fail the deployment."""
    configured.answers["/rates"] = [(500, {"error": {"code": "internal"}})]

    result, verdicts = run_hook()

    assert verdicts.reported[0][2] == "Failed"
    assert result["problems"][0].startswith("/rates answered 500")


def test_a_rates_answer_that_is_not_the_api_contract_fails(configured: Listener) -> None:
    """A 200 without the `rates` list (e.g. a proxy's page) is not mistaken for success."""
    configured.answers["/rates"] = [(200, b"<html>maintenance</html>")]

    _, verdicts = run_hook()

    assert verdicts.reported[0][2] == "Failed"


def test_tasks_that_become_ready_within_the_tries_pass(configured: Listener) -> None:
    """Targets still registering answer 503 at first; ready on the third try is Succeeded."""
    configured.answers["/readyz"] = [(503, {}), (503, {}), READY]

    result, verdicts = run_hook()

    assert verdicts.reported[0][2] == "Succeeded", result
    assert configured.seen.count("/readyz") == 3


def test_an_unreachable_test_listener_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening on the test port reports Failed, naming the unreachable URL."""
    for url in serve(lambda request: None):
        closed = url  # the server is shut down on leaving the loop: the port is then closed
    monkeypatch.setenv("TEST_LISTENER_URL", closed)
    monkeypatch.setenv("RATES_QUERY", QUERY)
    monkeypatch.setenv("CHECK_ATTEMPTS", "2")
    monkeypatch.setenv("CHECK_INTERVAL_S", "0.01")

    result, verdicts = run_hook()

    assert verdicts.reported[0][2] == "Failed"
    assert all("unreachable" in problem for problem in result["problems"])


def test_a_misconfigured_hook_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TEST_LISTENER_URL the hook reports Failed rather than waving the deployment on."""
    monkeypatch.delenv("TEST_LISTENER_URL", raising=False)
    monkeypatch.setenv("RATES_QUERY", QUERY)

    result, verdicts = run_hook()

    assert verdicts.reported == [("d-ABC123", "exec-42", "Failed")]
    assert "TEST_LISTENER_URL" in result["problems"][0]


def test_the_verdict_reaches_codedeploy_as_its_api_expects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """report_to_codedeploy sends PutLifecycleEventHookExecutionStatus with the deployment, the
    hook execution and the status, over HTTP to the CodeDeploy endpoint."""
    requests: list[tuple[str, dict[str, Any]]] = []

    def handle(request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers["Content-Length"])
        requests.append((request.headers["X-Amz-Target"], json.loads(request.rfile.read(length))))
        reply(request, 200, {"lifecycleEventHookExecutionId": "exec-42"})

    for url in serve(handle):
        monkeypatch.setenv("AWS_ENDPOINT_URL_CODEDEPLOY", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        hook.report_to_codedeploy("d-ABC123", "exec-42", "Failed")

    assert requests == [
        (
            "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus",
            {
                "deploymentId": "d-ABC123",
                "lifecycleEventHookExecutionId": "exec-42",
                "status": "Failed",
            },
        )
    ]


def test_package_is_reproducible_and_holds_the_handler(tmp_path: Path) -> None:
    """deploy/aws/hooks/package.py makes the same zip bytes twice (so Terraform's
    source_code_hash moves only with the code), holding pre_traffic.py at its root."""
    spec = importlib.util.spec_from_file_location("package", HOOK.parent / "package.py")
    assert spec and spec.loader
    package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)

    first = package.package(tmp_path / "a.zip").read_bytes()
    second = package.package(tmp_path / "b.zip").read_bytes()

    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert archive.namelist() == ["pre_traffic.py"]
        assert archive.read("pre_traffic.py") == HOOK.read_bytes()
