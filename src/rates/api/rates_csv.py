"""The rates answer as CSV: chosen by ``format=csv`` or ``Accept: text/csv``, for spreadsheets
and the lane page's download link. Same rows, same order, same unrounded prices as the JSON."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from rates.errors import InvalidRequest
from rates.query import DailyRate, RatesQuery

CSV_MEDIA_TYPE = "text/csv"
# The same URL answers JSON or CSV by its Accept header: caches must key on it.
VARY_ACCEPT = {"Vary": "Accept"}
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def wants_csv(request: Request) -> bool:
    """``format`` decides when given; otherwise CSV only if Accept prefers text/csv to JSON."""
    chosen = request.query_params.get("format")
    if chosen is not None:
        if chosen not in ("json", "csv"):
            raise InvalidRequest(
                f"format must be json or csv, got {chosen!r}", details={"parameter": "format"}
            )
        return chosen == "csv"
    accept = request.headers.get("accept", "")
    if CSV_MEDIA_TYPE not in accept.lower():  # most requests (*/*, JSON): nothing to weigh
        return False
    weights = _accept_weights(accept)
    csv_weight = weights.get(CSV_MEDIA_TYPE, 0.0)
    return csv_weight > 0 and csv_weight >= weights.get("application/json", 0.0)


def _accept_weights(header: str) -> dict[str, float]:
    """Media type -> q from an Accept header; malformed weights count as 0."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        media_type, *parameters = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if media_type:
            weights[media_type.lower()] = weight
    return weights


def rates_csv_response(query: RatesQuery, rates: Sequence[DailyRate]) -> Response:
    """``day,price,count`` rows (price empty under 3 prices), as a named download."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["day", "price", "count"])
    for rate in rates:
        price = "" if rate.price is None else repr(rate.price)
        writer.writerow([rate.day.isoformat(), price, rate.count])
    name = "_".join(
        _UNSAFE_FILENAME_CHARS.sub("-", part)
        for part in (
            "rates",
            query.origin,
            query.destination,
            query.date_from.isoformat(),
            query.date_to.isoformat(),
        )
    )
    return Response(
        buffer.getvalue(),
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', **VARY_ACCEPT},
    )
