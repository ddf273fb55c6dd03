"""The ASGI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from rates.api import batches, health, locations, rates, web
from rates.api.answers import AnswerCache
from rates.api.errors import install_error_handlers
from rates.api.middleware import ObservabilityMiddleware
from rates.db.connection import create_pool, create_sync_pool
from rates.observability import metrics
from rates.query import LargeRegions
from rates.settings import Settings
from rates.storage import PayloadStore


def create_app(settings: Settings) -> FastAPI:
    """Builds the app; the pool opens in the lifespan without waiting, so the app starts (and
    reports not-ready) while the database is down."""
    pool = create_pool(settings)
    ingest_pool = create_sync_pool(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=False)
        ingest_pool.open(wait=False)
        sampler = asyncio.create_task(_sample_pools([pool, ingest_pool]))
        try:
            yield
        finally:
            sampler.cancel()
            app.state.shutting_down = True
            await pool.close()
            ingest_pool.close()

    app = _RatesApp(
        title="rates",
        summary="Ocean-freight rates: average daily prices between ports and regions",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.large_regions = LargeRegions()
    app.state.answers = AnswerCache(settings.answer_cache_mb * 2**20)
    app.state.ingest_pool = ingest_pool
    app.state.store = PayloadStore(settings)
    app.state.shutting_down = False
    install_error_handlers(app)
    app.add_middleware(ObservabilityMiddleware, access_log=settings.access_log)
    app.include_router(rates.router)
    app.include_router(batches.router)
    app.include_router(health.router)
    app.include_router(locations.router)
    app.include_router(web.make_router(web.WebFiles.read()))
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    app.rates_path = ObservabilityMiddleware(rates.serve_rates, access_log=settings.access_log)
    return app


class _RatesApp(FastAPI):
    """FastAPI, except that GET /rates, the one hot path, goes straight to its handler with
    only the observability middleware around it (rates.serve_rates says why)."""

    rates_path: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/rates" and scope["method"] == "GET":
            scope["app"] = self
            scope["route"] = _RATES_ROUTE
            await self.rates_path(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


# What the metrics and the access log name the route by (the template, as for every route).
_RATES_ROUTE = SimpleNamespace(path="/rates")


async def _sample_pools(pools: list[Any], interval_s: float = 1.0) -> None:
    """Pool gauges, sampled once a second rather than on every request."""
    while True:
        in_use = waiting = 0
        for pool in pools:
            stats = pool.get_stats()
            in_use += stats.get("pool_size", 0) - stats.get("pool_available", 0)
            waiting += stats.get("requests_waiting", 0)
        metrics.DB_POOL_IN_USE.set(in_use)
        metrics.DB_POOL_WAITING.set(waiting)
        await asyncio.sleep(interval_s)


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents its default 422 on every operation with parameters; this API answers
    malformed input with 400 and the error shape instead (see api/errors.py)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for path in schema["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
        schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "RATES_INGEST_TOKENS (all batch calls) or "
                "RATES_BATCH_READ_TOKENS (reading batches only)",
            }
        }
        app.openapi_schema = schema
    return app.openapi_schema
