"""The service this project replaces, rebuilt as a yardstick for bench.api.

The original (xeneta/operations-task, `rates/rates.py`) is a Flask app that gunicorn runs with
its defaults (`gunicorn -b :3000 wsgi`: one synchronous worker). It opens one psycopg2
connection when the app is built, shares it between requests, and answers a port pair from
the `prices` table of the sample dump: one average and count per day of the range, null below
three prices, newest day first, as pretty-printed JSON. The dump ships no index on `prices`
("as shipped"); bench.api measures it again after indexing (orig_code, dest_code, day).

This module is written here from that description, not copied: what a benchmark needs from it
is the same stack, the same work per request and the same answers, which tests/bench checks
against `rates serve`.

    gunicorn -b 127.0.0.1:3000 bench.original:app    (ORIGINAL_DATABASE_URL=postgresql://...)
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import psycopg2
from flask import Flask, jsonify, request
from psycopg2.extras import DictCursor
from werkzeug.exceptions import BadRequest

DAILY_AVERAGES_SQL = """
SELECT series.day::date AS day,
       CASE WHEN daily.count >= 3 THEN daily.price END AS price,
       daily.count
FROM generate_series(%(date_from)s::date, %(date_to)s::date, interval '1 day') AS series (day)
LEFT JOIN (
    SELECT day, avg(price) AS price, count(*) AS count
    FROM prices
    WHERE orig_code = %(orig_code)s AND dest_code = %(dest_code)s
      AND day BETWEEN %(date_from)s AND %(date_to)s
    GROUP BY day
) AS daily ON daily.day = series.day
ORDER BY series.day DESC
"""


def create_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.json.compact = False  # type: ignore[attr-defined]  # the original pretty-prints
    # One connection per process, as in the original, opened when the app is built.
    connection = psycopg2.connect(database_url)

    def iso_day(name: str) -> str:
        value = request.args.get(name) or ""
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise BadRequest("Invalid date arguments") from None
        return value

    @app.get("/rates")
    def rates() -> Any:
        date_from, date_to = iso_day("date_from"), iso_day("date_to")
        orig_code, dest_code = request.args.get("orig_code"), request.args.get("dest_code")
        if not (orig_code and dest_code):
            raise BadRequest("Invalid location arguments")
        with connection.cursor(cursor_factory=DictCursor) as cursor:
            cursor.execute(
                DAILY_AVERAGES_SQL,
                {
                    "date_from": date_from,
                    "date_to": date_to,
                    "orig_code": orig_code,
                    "dest_code": dest_code,
                },
            )
            rows = cursor.fetchall()
        return jsonify(
            {
                "rates": [
                    {
                        "price": float(row["price"]) if row["price"] is not None else None,
                        "day": row["day"].isoformat(),
                        "count": row["count"],
                    }
                    for row in rows
                ]
            }
        )

    return app


if os.environ.get("ORIGINAL_DATABASE_URL"):
    app = create_app(os.environ["ORIGINAL_DATABASE_URL"])
