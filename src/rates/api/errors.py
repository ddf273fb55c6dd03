"""Every error leaves the API as ``{"error": {"code", "message", "details"}}``, never HTML."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import Response

from rates.errors import DatabaseUnavailable, InvalidRequest, RatesError

log = structlog.get_logger(__name__)


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


def error_response(error: RatesError) -> Response:
    return json_response(error.to_dict(), error.status_code)


async def _rates_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RatesError)
    return error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"location": ".".join(str(part) for part in e["loc"]), "reason": e["msg"]}
        for e in exc.errors()
    ]
    return error_response(InvalidRequest("the request is malformed", details=problems))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    body = {"error": {"code": codes.get(exc.status_code, "http_error"), "message": str(exc.detail)}}
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (documented := _documented_methods(request)):
        headers["Allow"] = documented
    return json_response(body, exc.status_code, headers)


def _documented_methods(request: Request) -> str:
    """Every method the OpenAPI document gives this path: Starlette's Allow names only those
    of the first route it tried (e.g. POST for /batches, which GET serves too)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        parts = re.split(r"(\{[^/}]+\})", template)
        pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        if re.fullmatch(pattern, request.url.path):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


async def _database_error(_: Request, exc: Exception) -> Response:
    log.warning("database_unavailable", error=type(exc).__name__, detail=str(exc))
    return error_response(DatabaseUnavailable("the database is unavailable; retry shortly"))


async def _unexpected_error(_: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", exc_info=exc)
    return error_response(RatesError("internal error"))


_HANDLERS: list[tuple[type[Exception], Callable[[Request, Exception], Awaitable[Response]]]] = [
    (RatesError, _rates_error),
    (RequestValidationError, _validation_error),
    (HTTPException, _http_error),
    (PoolTimeout, _database_error),
    (psycopg.OperationalError, _database_error),
    (Exception, _unexpected_error),
]


def install_error_handlers(app: FastAPI) -> None:
    for exception_type, handler in _HANDLERS:
        app.add_exception_handler(exception_type, handler)


async def error_response_for(request: Request, exc: Exception) -> Response:
    """What the installed handlers answer, for a path that runs outside FastAPI's stack."""
    handler = next(handler for kind, handler in _HANDLERS if isinstance(exc, kind))
    return await handler(request, exc)
