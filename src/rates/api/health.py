"""Liveness (no database) and readiness (database reachable, not shutting down)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response

from rates.api.errors import error_response, json_response
from rates.api.schemas import ERROR_RESPONSES, HealthResponse, ReadinessResponse
from rates.errors import DatabaseUnavailable, RatesError
from rates.observability import metrics

router = APIRouter(tags=["health"])

# A probe must answer well within a load balancer's timeout: while the database is away the
# pool would hold it for the whole pool timeout (RATES_DB_POOL_TIMEOUT_S), and a query on a
# connection to a partitioned host would hang; the bound covers both.
READINESS_TIMEOUT_S = 0.5
# How far the database /rates reads from is behind the writer: NULL on the writer, 0 when the
# replica has replayed all it received, else the age of the last transaction it replayed.
REPLICA_LAG = """
SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())
       END::float8
"""


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> Response:
    """The process is alive; says nothing about the database."""
    return json_response({"status": "ok"})


class ShuttingDown(RatesError):
    status_code = 503
    code = "shutting_down"


@router.get("/readyz", response_model=ReadinessResponse, responses={503: ERROR_RESPONSES[503]})
async def readyz(request: Request) -> Response:
    """Ready when the database answers within half a second and shutdown has not begun; says
    how far a read replica lags. For deploy gates and monitoring: the load balancer checks
    /healthz, so a database failover does not make every task unhealthy at once."""
    if request.app.state.shutting_down:
        return error_response(ShuttingDown("the server is shutting down"))
    try:
        async with (
            asyncio.timeout(READINESS_TIMEOUT_S),
            request.app.state.pool.connection() as conn,
        ):
            row = await (await conn.execute(REPLICA_LAG)).fetchone()
    except Exception:
        metrics.READINESS_OK.set(0)
        return error_response(DatabaseUnavailable("the database is unavailable"))
    metrics.READINESS_OK.set(1)
    return json_response({"status": "ready", "replica_lag_s": row[0] if row else None})


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    """Prometheus text exposition, aggregated over all server worker processes (a plain def:
    reading every process's metrics file runs in the thread pool, not on the event loop)."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
