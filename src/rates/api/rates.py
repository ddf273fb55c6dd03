"""GET /rates: the original API's contract, with region support and JSON errors."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from rates.api.errors import json_response
from rates.api.rates_csv import VARY_ACCEPT, rates_csv_response, wants_csv
from rates.api.schemas import ERROR_RESPONSES, RatesResponse
from rates.query import RatesQuery, fetch_daily_rates

router = APIRouter(tags=["rates"])

_LOCATION = "Port code (e.g. CNSGH) or region slug (e.g. china_main)"
_PARAMETERS = [
    {"name": "date_from", "description": "First day, YYYY-MM-DD", "example": "2021-01-01"},
    {"name": "date_to", "description": "Last day, YYYY-MM-DD", "example": "2021-01-31"},
    {"name": "orig_code", "description": f"Origin: {_LOCATION}", "example": "CNSGH"},
    {"name": "dest_code", "description": f"Destination: {_LOCATION}", "example": "NLRTM"},
    {"name": "origin", "description": "Alias of orig_code"},
    {"name": "destination", "description": "Alias of dest_code"},
    {"name": "format", "description": "json (default) or csv; or send Accept: text/csv"},
]


@router.get(
    "/rates",
    response_model=RatesResponse,
    responses=ERROR_RESPONSES,
    summary="Average price per day between two ports or regions",
    # Parameters are parsed by RatesQuery (one place, our error format) rather than by
    # FastAPI's per-parameter validation, which costs a fifth of this route's CPU time.
    openapi_extra={
        "parameters": [
            {"in": "query", "required": False, "schema": {"type": "string"}, **parameter}
            for parameter in _PARAMETERS
        ]
    },
)
async def get_rates(request: Request) -> Response:
    """One entry per day from date_to down to date_from; ``origin``/``destination`` are aliases."""
    params = request.query_params
    query = RatesQuery.parse(
        date_from=params.get("date_from"),
        date_to=params.get("date_to"),
        origin=params.get("orig_code", params.get("origin")),
        destination=params.get("dest_code", params.get("destination")),
        max_range_days=request.app.state.settings.max_range_days,
    )
    async with request.app.state.pool.connection() as conn:
        rates = await fetch_daily_rates(conn, query)
    if wants_csv(request):
        return rates_csv_response(query, rates)
    return json_response(
        {
            "rates": [
                {"day": rate.day.isoformat(), "price": rate.price, "count": rate.count}
                for rate in rates
            ]
        },
        headers=VARY_ACCEPT,
    )
