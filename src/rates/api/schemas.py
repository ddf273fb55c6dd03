"""Response shapes, declared for the OpenAPI document."""

from __future__ import annotations

import datetime
from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable error code")
    message: str = Field(description="What is wrong, in words a user can act on")
    details: Any = Field(default=None, description="Structured context, e.g. the bad parameter")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class DailyRateOut(BaseModel):
    day: datetime.date
    price: float | None = Field(description="Average price in USD; null under 3 prices that day")
    count: int = Field(description="Number of prices that day")


class RatesResponse(BaseModel):
    rates: list[DailyRateOut]


class HealthResponse(BaseModel):
    status: str


class ReadinessResponse(HealthResponse):
    replica_lag_s: float | None = Field(
        default=None,
        description="Seconds the database /rates reads from lags behind the writer; null when "
        "it is the writer itself",
    )


def error_responses(**described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, e.g. ``error_responses(e404="No such batch")``."""
    return {
        int(key.removeprefix("e")): {"model": ErrorResponse, "description": description}
        for key, description in described.items()
    }


UNAVAILABLE = "Database (or batch storage) unavailable; retry"
ERROR_RESPONSES = error_responses(
    e400="Missing or malformed parameters",
    e404="Unknown port code or region slug",
    e503=UNAVAILABLE,
)
