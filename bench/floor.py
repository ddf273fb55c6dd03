"""The floor of any Python request path on this machine, as a yardstick for bench.api.

A bare ASGI app, no framework and no database, that answers every GET with the same JSON body,
the size of a 31-day port-pair answer. bench.api serves it the way `rates serve` serves the
API (gunicorn, the same uvicorn worker class, one process per core) and sends it the same
URLs: what it reaches is the most any handler behind that server could, before parsing a
query, reading PostgreSQL or rendering an answer.

    gunicorn -k rates.api.worker.RatesUvicornWorker -w 2 -b 127.0.0.1:3001 bench.floor:app
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

BODY = orjson.dumps(
    {
        "rates": [
            {"day": f"2021-01-{day:02d}", "price": 1234.5678, "count": 7}
            for day in range(31, 0, -1)
        ]
    }
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


class FixedAnswer:
    """The ASGI app; ``state`` is where the worker class marks a shutdown, as on the API."""

    def __init__(self) -> None:
        self.state = SimpleNamespace()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})


app = FixedAnswer()
