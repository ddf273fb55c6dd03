"""GET /locations: the lane page's pickers; GET /lanes/example: the lane it opens with."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from rates.api.errors import json_response
from rates.api.schemas import UNAVAILABLE, error_responses
from rates.errors import RatesError
from rates.locations import (
    DEFAULT_MATCHES,
    MAX_MATCHES,
    MAX_QUERY_CHARS,
    LocationSearch,
    fetch_example_lane,
    search_locations,
)

router = APIRouter(tags=["locations"])

# Control characters (Unicode category Cc), which q may not hold, as a regex class body.
_CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
_PRINTABLE = f"[^{_CONTROL}]"


class LocationOut(BaseModel):
    kind: str = Field(description="port or region")
    code: str = Field(description="Port code or region slug: what /rates takes as a location")
    name: str
    parent: str | None = Field(description="Slug of the region it belongs to; null at the top")
    parent_name: str | None
    depth: int = Field(description="0 for a top-level region, one more per level below")


class LocationsResponse(BaseModel):
    locations: list[LocationOut]


class ExampleLaneOut(BaseModel):
    origin: str
    destination: str
    date_from: str
    date_to: str


class NoData(RatesError):
    status_code = 404
    code = "no_data"


@router.get(
    "/locations",
    response_model=LocationsResponse,
    responses=error_responses(e400="q missing, too long or malformed", e503=UNAVAILABLE),
    summary="Ports and regions whose code, slug or name contains q",
    openapi_extra={
        "parameters": [
            {
                "in": "query",
                "name": "q",
                "required": True,
                # Something besides spaces, no control characters, at most MAX_QUERY_CHARS.
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_QUERY_CHARS,
                    "pattern": f"^{_PRINTABLE}*[^\\s{_CONTROL}]{_PRINTABLE}*$",
                },
                "description": "Text to find in codes, slugs and names (case-insensitive)",
                "example": "china",
            },
            {
                "in": "query",
                "name": "limit",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_MATCHES},
                "description": f"Most matches to return [default: {DEFAULT_MATCHES}]",
            },
        ]
    },
)
async def get_locations(request: Request) -> Response:
    """Exact matches first, then prefixes, then matches anywhere; shallow before deep."""
    search = LocationSearch.parse(
        q=request.query_params.get("q"), limit=request.query_params.get("limit")
    )
    async with request.app.state.pool.connection() as conn:
        found = await search_locations(conn, search)
    return json_response({"locations": [asdict(location) for location in found]})


@router.get(
    "/lanes/example",
    response_model=ExampleLaneOut,
    responses=error_responses(e404="The database holds no prices yet", e503=UNAVAILABLE),
    summary="A lane with recent prices, for the lane page to open with",
)
async def get_example_lane(request: Request) -> Response:
    """The first two top-level regions over the last 31 days that have prices."""
    async with request.app.state.pool.connection() as conn:
        lane = await fetch_example_lane(conn)
    if lane is None:
        raise NoData("the database holds no prices yet")
    return json_response(
        {
            "origin": lane.origin,
            "destination": lane.destination,
            "date_from": lane.date_from.isoformat(),
            "date_to": lane.date_to.isoformat(),
        }
    )
