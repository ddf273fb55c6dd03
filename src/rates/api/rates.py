"""GET /rates: the original API's contract, with region support and JSON errors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from rates.api.errors import json_response
from rates.api.schemas import ERROR_RESPONSES, RatesResponse
from rates.query import RatesQuery, fetch_daily_rates

router = APIRouter(tags=["rates"])

Location = Annotated[
    str | None, Query(description="Port code (e.g. CNSGH) or region slug (e.g. china_main)")
]
Day = Annotated[str | None, Query(description="YYYY-MM-DD", examples=["2021-01-01"])]


@router.get(
    "/rates",
    response_model=RatesResponse,
    responses=ERROR_RESPONSES,
    summary="Average price per day between two ports or regions",
)
async def get_rates(
    request: Request,
    date_from: Day = None,
    date_to: Day = None,
    orig_code: Location = None,
    dest_code: Location = None,
    origin: Location = None,
    destination: Location = None,
) -> Response:
    """One entry per day from date_to down to date_from; ``origin``/``destination`` are aliases."""
    query = RatesQuery.parse(
        date_from=date_from,
        date_to=date_to,
        origin=orig_code if orig_code is not None else origin,
        destination=dest_code if dest_code is not None else destination,
        max_range_days=request.app.state.settings.max_range_days,
    )
    async with request.app.state.pool.connection() as conn:
        rates = await fetch_daily_rates(conn, query)
    return json_response(
        {
            "rates": [
                {"day": rate.day.isoformat(), "price": rate.price, "count": rate.count}
                for rate in rates
            ]
        }
    )
