"""One exception hierarchy for everything a user can act on; the API maps it to JSON errors."""

from __future__ import annotations

from typing import Any


class RatesError(Exception):
    """Base of every user-facing error: carries an HTTP status, a stable code and a message."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class InvalidRequest(RatesError):
    """The request's parameters are missing or malformed."""

    status_code = 400
    code = "invalid_request"


class UnknownLocation(RatesError):
    """A port code or region slug that the database does not know."""

    status_code = 404
    code = "unknown_location"


class DatabaseUnavailable(RatesError):
    """PostgreSQL cannot be reached right now; the request may be retried."""

    status_code = 503
    code = "database_unavailable"


class DataAlreadyLoaded(RatesError):
    """Loading data into tables that already hold data would duplicate it."""

    status_code = 409
    code = "data_already_loaded"


class InvalidDump(RatesError):
    """A dump file that is not a pg_dump of the rates tables."""

    status_code = 400
    code = "invalid_dump"
