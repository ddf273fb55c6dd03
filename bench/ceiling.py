"""The ceiling of a Python request path that reads PostgreSQL here, as a yardstick for bench.api.

A bare ASGI app, no framework, no validation, no logs or metrics, that answers a port-pair
/rates URL with the statement `rates serve` runs for it (`PORT_PAIR_RATES_SQL`), through the
API's own pool (`create_pool`: psycopg 3, the same session settings), and the same JSON body.
bench.api serves it the way `rates serve` serves the API and sends it the same URLs: what it
reaches is the most any handler using this driver could, so it tells how much of the gap to
pgbench is the request path and how much is Python and the driver alone.

    RATES_DATABASE_URL=... gunicorn -k rates.api.worker.RatesUvicornWorker -w 2 \
        -b 127.0.0.1:3001 "bench.ceiling:create_app()"
"""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import orjson

from rates.db.connection import create_pool
from rates.query import MIN_PRICES_PER_DAY, PORT_PAIR_RATES_SQL
from rates.settings import Settings

HEADERS = [(b"content-type", b"application/json")]
ONE_DAY = timedelta(days=1)


class PortPairAnswer:
    """The ASGI app; ``state`` is where the worker class marks a shutdown, as on the API."""

    def __init__(self, settings: Settings) -> None:
        self.state = SimpleNamespace()
        self.pool = create_pool(settings)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await self.pool.open()
                await send({"type": "lifespan.startup.complete"})
            await self.pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        asked = dict(parse_qsl(scope["query_string"].decode()))
        first = date.fromisoformat(asked["date_from"])
        last = date.fromisoformat(asked["date_to"])
        params = {
            "origin": asked["orig_code"],
            "destination": asked["dest_code"],
            "date_from": first,
            "date_to": last,
            "min_prices": MIN_PRICES_PER_DAY,
        }
        async with self.pool.connection() as conn:
            cursor = await conn.execute(PORT_PAIR_RATES_SQL, params)
            priced = {row[2]: row for row in await cursor.fetchall() if row[2] is not None}
        rates = []
        day = last
        while day >= first:  # orjson writes the dates as YYYY-MM-DD
            row = priced.get(day)
            price, count = (row[3], row[4]) if row else (None, 0)
            rates.append({"day": day, "price": price, "count": count})
            day -= ONE_DAY
        body = orjson.dumps({"rates": rates})
        headers = [*HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def create_app() -> PortPairAnswer:
    """For gunicorn, in each worker: the settings from the environment, as `rates serve`'s."""
    return PortPairAnswer(Settings())
