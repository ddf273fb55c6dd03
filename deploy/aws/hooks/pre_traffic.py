"""CodeDeploy hook (AfterAllowTestTraffic) of the API's blue/green deployment.

CodeDeploy invokes it once the new (green) task set answers on the load balancer's test
listener and before any production traffic moves. It asks the green tasks, through that
listener, what a user and the load balancer would: `/readyz` (the database answers, the process
is not draining) and one `/rates` query (the query path, its database role and grants work end
to end). It then reports Succeeded or Failed to CodeDeploy, which on Failed stops the
deployment and keeps production on the old task set.

Self-contained on purpose (standard library and the boto3 of the Lambda runtime): it tests the
image being deployed, so it must not ship inside it. Settings come from the environment:

    TEST_LISTENER_URL   base URL of the test listener, e.g. https://api.example.com:8443
    RATES_QUERY         query string of the /rates check (dates and two locations)
    CHECK_ATTEMPTS      tries per check before it counts as failed (default 6)
    CHECK_INTERVAL_S    seconds between tries (default 10)
    REQUEST_TIMEOUT_S   timeout of one request (default 5)
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SUCCEEDED = "Succeeded"
FAILED = "Failed"


@dataclass(frozen=True)
class Settings:
    """What to check and how patiently."""

    base_url: str
    rates_query: str
    attempts: int = 6
    interval_s: float = 10.0
    timeout_s: float = 5.0

    @classmethod
    def from_environment(cls, environ: dict[str, str]) -> Settings:
        return cls(
            base_url=environ["TEST_LISTENER_URL"].rstrip("/"),
            rates_query=environ["RATES_QUERY"].lstrip("?"),
            attempts=int(environ.get("CHECK_ATTEMPTS", "6")),
            interval_s=float(environ.get("CHECK_INTERVAL_S", "10")),
            timeout_s=float(environ.get("REQUEST_TIMEOUT_S", "5")),
        )


def get_json(url: str, timeout_s: float) -> tuple[int, Any]:
    """Status and decoded JSON body of a GET (the body is None when it is not JSON)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def readiness_problem(status: int, body: Any) -> str | None:
    if status == 200 and isinstance(body, dict) and body.get("status") == "ready":
        return None
    return f"/readyz answered {status} {json.dumps(body)[:200]}"


def rates_problem(status: int, body: Any) -> str | None:
    if status == 200 and isinstance(body, dict) and isinstance(body.get("rates"), list):
        return None
    return f"/rates answered {status} {json.dumps(body)[:200]}"


def check_green(settings: Settings, sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Problems found on the test listener; empty when the new task set may take traffic.

    Each check is retried (targets may still be registering), and keeps its last problem."""
    checks = [
        (f"{settings.base_url}/readyz", readiness_problem),
        (f"{settings.base_url}/rates?{settings.rates_query}", rates_problem),
    ]
    problems = []
    for url, judge in checks:
        problem: str | None = "not tried"
        for attempt in range(settings.attempts):
            if attempt:
                sleep(settings.interval_s)
            try:
                problem = judge(*get_json(url, settings.timeout_s))
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                problem = f"{url.split('?')[0]} unreachable: {error}"
            if problem is None:
                break
        if problem is not None:
            problems.append(problem)
    return problems


def report_to_codedeploy(deployment_id: str, execution_id: str, status: str) -> None:
    """Tell CodeDeploy the hook's verdict (it waits for this call, up to an hour)."""
    import boto3  # the Lambda runtime's copy; imported here so the checks run without it

    boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id,
        lifecycleEventHookExecutionId=execution_id,
        status=status,
    )


def handler(
    event: dict[str, str],
    context: object,
    report: Callable[[str, str, str], None] = report_to_codedeploy,
) -> dict[str, Any]:
    """Lambda entry point: check the green task set, report the verdict, return it for the log."""
    try:
        problems = check_green(Settings.from_environment(dict(os.environ)))
    except (KeyError, ValueError) as error:  # a misconfigured hook must fail closed
        problems = [f"hook misconfigured: {error!r}"]
    status = SUCCEEDED if not problems else FAILED
    report(event["DeploymentId"], event["LifecycleEventHookExecutionId"], status)
    result = {"status": status, "problems": problems}
    print(json.dumps(result))
    return result
