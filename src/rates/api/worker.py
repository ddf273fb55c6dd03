"""The uvicorn worker class gunicorn runs, with a drain that fails no request.

Stock uvicorn closes idle keep-alive connections the moment shutdown begins; a client that
sent its next request at that instant gets a connection reset. During a SIGHUP reload or a
deploy that is a failed request. Here an idle connection instead lingers briefly: a request
already on its way is answered, with ``Connection: close``, and the client reconnects to a
live worker. Readiness turns 503 as soon as shutdown begins.
"""

from __future__ import annotations

import os
import sys
from types import FrameType
from typing import Any, ClassVar

from gunicorn.arbiter import Arbiter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

# How long an idle connection stays open after shutdown begins; longer than the gap between
# a busy client's requests, shorter than any client's keep-alive timeout.
IDLE_LINGER_S = 1.0


class DrainingHttpToolsProtocol(HttpToolsProtocol):
    """HTTP/1.1 protocol whose graceful shutdown answers in-flight keep-alive requests."""

    _draining = False

    def shutdown(self) -> None:
        self._draining = True
        if self.cycle is None or self.cycle.response_complete:
            if self.timeout_keep_alive_task is not None:
                self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = self.loop.call_later(
                IDLE_LINGER_S, self.timeout_keep_alive_handler
            )
        else:
            self.cycle.keep_alive = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._draining:
            self.cycle.keep_alive = False


class _ShutdownAwareServer(Server):
    """Marks the app as shutting down on the first exit signal, before connections drain,
    and shuts down gracefully on its own when the gunicorn master is gone."""

    def __init__(self, app: Any, master_pid: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._app = app
        self._master_pid = master_pid

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.shutting_down = True
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        # A master killed outright (SIGKILL, OOM) stops no worker: orphaned, it would serve on
        # and hold the port. Checked once a second (ticks are 0.1 s).
        if counter % 10 == 0 and os.getppid() != self._master_pid:
            self._app.state.shutting_down = True
            self.should_exit = True
        return bool(await super().on_tick(counter))


class RatesUvicornWorker(UvicornWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": DrainingHttpToolsProtocol}

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = _ShutdownAwareServer(self.wsgi, self.ppid, config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
