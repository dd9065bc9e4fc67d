"""Health, readiness, metrics and the event contract."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from parkstream.api.context import ApiContext, get_context

router = APIRouter(tags=["operations"])
READY_TIMEOUT_S = 2.0


@router.get("/healthz", summary="Liveness: the process serves requests")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and the Kafka broker are reachable",
    responses={503: {"description": "A dependency is unreachable; the body says which."}},
)
async def readyz(ctx: ApiContext = Depends(get_context)) -> JSONResponse:
    checks: dict[str, str] = {}

    async def database() -> None:
        await ctx.pool.fetchval("SELECT 1")

    async def broker() -> None:
        await ctx.commands.producer.client.fetch_all_metadata()

    for name, probe in (("database", database), ("broker", broker)):
        try:
            await asyncio.wait_for(probe(), READY_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; say which
            checks[name] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics of this API process", response_class=Response)
async def metrics(ctx: ApiContext = Depends(get_context)) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)


_ASYNCAPI: dict[str, Any] = {}


@router.get(
    "/asyncapi.json",
    summary="The AsyncAPI 3 document of parkstream's public topics (the event contract)",
)
async def asyncapi() -> JSONResponse:
    if not _ASYNCAPI:
        from parkstream.schemas.asyncapi import document

        _ASYNCAPI.update(document())
    return JSONResponse(_ASYNCAPI)
