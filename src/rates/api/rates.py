"""GET /rates: the original API's contract, with region support and JSON errors."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from rates.api.answers import AnswerCache, KeptAnswer
from rates.api.errors import error_response_for, json_response
from rates.api.rates_csv import VARY_ACCEPT, rates_csv_response, wants_csv
from rates.api.schemas import ERROR_RESPONSES, RatesResponse
from rates.observability import metrics
from rates.query import DailyRate, RatesQuery, fetch_daily_rates, fetch_data_version

router = APIRouter(tags=["rates"])

# Caches may keep an answer but must ask again before reusing it (a batch may have counted
# since); the ETag makes asking cheap: 304 with no body while the data version is unchanged.
CACHE_CONTROL = "no-cache"

_LOCATION = "Port code (e.g. CNSGH) or region slug (e.g. china_main)"
# Declared as strictly as OpenAPI can: what it cannot say (date_from not after date_to, the
# range limit, the origin/destination aliases) is a 400 naming the parameter.
_DAY = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_PLACE = {"type": "string", "minLength": 1, "pattern": "\\S"}
_PARAMETERS = [
    {"name": "date_from", "description": "First day, YYYY-MM-DD", "example": "2021-01-01"},
    {"name": "date_to", "description": "Last day, YYYY-MM-DD", "example": "2021-01-31"},
    {
        "name": "orig_code",
        "description": f"Origin: {_LOCATION}; also accepted as `origin`",
        "example": "CNSGH",
    },
    {
        "name": "dest_code",
        "description": f"Destination: {_LOCATION}; also accepted as `destination`",
        "example": "NLRTM",
    },
]
# Optional, unlike the others; only these two values.
_FORMAT = {
    "in": "query",
    "name": "format",
    "required": False,
    "schema": {"type": "string", "enum": ["json", "csv"]},
    "description": "json (default) or csv; or send Accept: text/csv",
}


@router.get(
    "/rates",
    response_model=RatesResponse,
    responses=ERROR_RESPONSES,
    summary="Average price per day between two ports or regions",
    # Parameters are parsed by RatesQuery (one place, our error format) rather than by
    # FastAPI's per-parameter validation, which costs a fifth of this route's CPU time.
    openapi_extra={
        "parameters": [
            {
                "in": "query",
                "required": True,
                "schema": _DAY if parameter["name"].startswith("date") else _PLACE,
                **parameter,
            }
            for parameter in _PARAMETERS
        ]
        + [_FORMAT]
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
    as_csv = wants_csv(request)
    answers: AnswerCache = request.app.state.answers
    key = (query.date_from, query.date_to, query.origin, query.destination, as_csv)
    kept = answers.get(key)
    async with request.app.state.pool.connection() as conn:
        asked = request.headers.get("if-none-match")
        if kept is not None or asked is not None:
            version = await fetch_data_version(conn)
            headers = _cache_headers(_etag(version, as_csv))
            if asked is not None and _matches(asked, headers["ETag"]):
                return Response(status_code=304, headers=headers)
            if kept is not None and kept.data_version == version:
                metrics.answer_cache_lookups("hit").inc()
                return kept.response(headers)
        metrics.answer_cache_lookups("miss" if kept is None else "stale").inc()
        answer = await fetch_daily_rates(conn, query, request.app.state.large_regions)
    response = _render(query, answer.rates, as_csv)
    if answers.enabled:  # with the cache off, not even the copy of the headers is made
        answers.keep(key, KeptAnswer.of(answer.data_version, response))
    response.headers.update(_cache_headers(_etag(answer.data_version, as_csv)))
    return response


def _render(query: RatesQuery, rates: Sequence[DailyRate], as_csv: bool) -> Response:
    if as_csv:
        return rates_csv_response(query, rates)
    # orjson writes a date as YYYY-MM-DD itself, in half the time of isoformat() per day.
    return json_response(
        {"rates": [{"day": rate.day, "price": rate.price, "count": rate.count} for rate in rates]}
    )


async def serve_rates(scope: Scope, receive: Receive, send: Send) -> None:
    """GET /rates as a bare ASGI app: the same handler and error answers as through FastAPI's
    router, without its middleware layers and route matching, which cost as much CPU as the
    rest of the request (bench.api). The app calls this for GET /rates; the route above
    stays for OpenAPI."""
    request = Request(scope, receive)
    try:
        response = await get_rates(request)
    except Exception as exc:  # every exception, as the installed handlers see them
        response = await error_response_for(request, exc)
    await response(scope, receive, send)


def _etag(data_version: int, as_csv: bool) -> str:
    """Weak: the same data gives the same answer, byte for byte or not; the CSV and JSON
    forms of one URL are different representations, so they get different tags."""
    return f'W/"{data_version}{"-csv" if as_csv else ""}"'


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110: weak comparison against any of a list of tags, or *."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def _cache_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": CACHE_CONTROL, **VARY_ACCEPT}
