"""ECS task scale-in protection: a worker applying a batch is not stopped by scale-in or deploys.

The ECS agent serves ``$ECS_AGENT_URI/task-protection/v1/state`` inside every task. While the
task is protected, neither Service Auto Scaling nor a rolling deployment stops it; ECS waits
until the worker clears the protection (or it expires). The worker protects its task when it
claims a batch and clears the protection when the batch ends, however it ends. Outside ECS
(no ``ECS_AGENT_URI``) both calls do nothing.

A failed call is logged and the batch goes on: without protection the batch is still safe,
only less patient (SIGTERM gives it the grace period, then it rolls back for another worker).
"""

from __future__ import annotations

import httpx2 as httpx
import structlog

log = structlog.get_logger(__name__)

STATE_PATH = "/task-protection/v1/state"
# The agent answers locally within milliseconds; a stuck call must not hold a batch up long.
_TIMEOUT_S = 5.0


class TaskProtection:
    """Sets and clears this task's scale-in protection through the ECS agent."""

    def __init__(self, agent_uri: str | None, expires_in_minutes: int) -> None:
        self._url = agent_uri.rstrip("/") + STATE_PATH if agent_uri else None
        self._expires_in_minutes = expires_in_minutes
        self.protected = False

    def protect(self) -> None:
        """Protects the task for ``expires_in_minutes`` (ECS lifts it by itself after that)."""
        if self._put({"ProtectionEnabled": True, "ExpiresInMinutes": self._expires_in_minutes}):
            self.protected = True

    def release(self) -> None:
        """Clears the protection if this worker set it; the task may be stopped again."""
        if self.protected and self._put({"ProtectionEnabled": False}):
            self.protected = False

    def _put(self, state: dict[str, object]) -> bool:
        if self._url is None:
            return False
        try:
            response = httpx.put(self._url, json=state, timeout=_TIMEOUT_S)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("task_protection_unavailable", error=str(exc), wanted=state)
            return False
        # The agent answers 200 with {"protection": {...}}, or {"failure"|"error": {...}}.
        if response.status_code != 200 or "protection" not in body:
            log.warning("task_protection_refused", status=response.status_code, answer=body)
            return False
        return True
