"""The FastAPI application, built by :func:`create_app` from settings (never at import)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parkstream import __version__
from parkstream.api import problems
from parkstream.api.commands import CommandSender
from parkstream.api.context import (
    ApiContext,
    ApiMetrics,
    KeyVerifier,
    ProjectionSignal,
    RateLimits,
)
from parkstream.config import Settings
from parkstream.logging import get_logger

log = get_logger("parkstream.api")

DESCRIPTION = """\
The HTTP face of parkstream: registry, reservations, overrides and queries of one tenant.

**Authentication.** Every `/v1` call carries `X-API-Key: psk_...` (`parkstream apikey
create`). A missing or malformed key is answered 401; a revoked or expired key, or one
without the scope the route needs, 403. Scopes: `read` (queries), `write` (reservations,
overrides), `admin` (registry, display policy, orphan devices; implies the others).
Another tenant's resources do not exist for a key: 404.

**Writes are commands.** A write is sent to the `space-commands` stream and decided by the
fold of the bay's events; its effect shows in the read model moments later. Registry and
override writes answer 202 with the command id. A reservation waits (up to
`PARKSTREAM_API_COMMAND_WAIT_S`, 5 s by default) for the fold's decision: 201 with the
reservation, 409 naming the conflicting one, or 202 with a status link when the wait runs out.
Send an `Idempotency-Key` header to make a create safe to retry.

**Errors** are RFC 9457 problem documents (`application/problem+json`); an invalid request
names each bad field in `invalid-params`.

**Rate limits** apply per key and per tenant, reads and writes apart; each response carries
`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`, a 429 also `Retry-After`.
"""

TAGS = [
    {"name": "sites", "description": "Sites (car parks) and their time zones."},
    {"name": "spaces", "description": "Bays: registry, state with explanation, history."},
    {"name": "reservations", "description": "Reservations decided by the fold."},
    {"name": "overrides", "description": "Manual states that win over sensors and reservations."},
    {"name": "devices", "description": "Device health and devices that belong to no bay."},
    {"name": "utilization", "description": "How the bays were used, hourly and daily."},
    {"name": "operations", "description": "Health, readiness, metrics, contracts."},
]


class ObserveMiddleware:
    """Adds the rate-limit headers a dependency computed, and counts every request.

    Pure ASGI (no per-request task), so it costs microseconds.
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = scope.get("state", {}).get("rate_headers")
                if extra:
                    headers = list(message.get("headers", []))
                    present = {k.lower() for k, _ in headers}
                    headers.extend(
                        (k.lower().encode(), v.encode())
                        for k, v in extra.items()
                        if k.lower().encode() not in present
                    )
                    message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - started)


def create_app(settings: Settings, *, context: ApiContext | None = None) -> FastAPI:
    """The API. Without ``context`` the app opens its own pool and producer at startup."""
    metrics = context.metrics if context is not None else ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if context is not None:
            app.state.ctx = context
            yield
            return
        ctx, close = await open_context(settings, metrics)
        app.state.ctx = ctx
        _freeze_startup_heap()
        try:
            yield
        finally:
            await close()

    app = FastAPI(
        title="parkstream API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        responses=problems.responses(400, 500),
    )
    if context is not None:
        app.state.ctx = context  # also for clients that do not run the lifespan
    problems.install(app)
    from parkstream.api.routes import register_routes

    register_routes(app)
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Idempotency-Key", "Content-Type"],
            expose_headers=[
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "Retry-After",
                "Location",
            ],
            max_age=600,
        )
    return app


def _freeze_startup_heap() -> None:
    """Move everything allocated while starting (modules, routes, schemas, pools) out of
    the collector's reach.

    A full collection walks every tracked object; with the start-up heap in it, each one
    stalled every request in flight for tens of milliseconds. Frozen objects are never
    scanned; what requests allocate afterwards is collected as before.
    """
    gc.collect()
    gc.freeze()


async def open_context(
    settings: Settings, metrics: ApiMetrics | None = None
) -> tuple[ApiContext, Any]:
    """Connect to PostgreSQL and Kafka; returns the context and a coroutine function closing it."""
    import asyncpg
    from aiokafka import AIOKafkaProducer

    from parkstream.kafka_profile import aiokafka_producer_kwargs

    metrics = metrics or ApiMetrics()
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(), min_size=2, max_size=10, init=_init_connection
    )
    producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings))
    try:
        await producer.start()
    except BaseException:
        await pool.close()
        raise
    signal = ProjectionSignal()
    listener = await asyncpg.connect(settings.database_url.get_secret_value())
    await listener.add_listener(ProjectionSignal.CHANNEL, signal.notify)
    ctx = ApiContext(
        settings=settings,
        pool=pool,
        commands=CommandSender(settings, producer, metrics),
        verifier=KeyVerifier(pool, settings.api_key_cache_s),
        limits=RateLimits.from_settings(settings),
        metrics=metrics,
        extras={"projection_signal": signal},
    )

    async def close() -> None:
        await listener.close()
        for closer in ctx.extras.get("closers", []):
            await closer()
        await producer.stop()
        await asyncio.wait_for(pool.close(), 10)

    return ctx, close


async def _init_connection(conn: Any) -> None:
    import orjson

    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            schema="pg_catalog",
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
        )
