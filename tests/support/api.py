"""A running stack for API tests: a fresh database, topics, the worker, the projector and
the API app (in process, through httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from parkstream.api import keys
from parkstream.api.app import create_app, open_context
from parkstream.api.context import ApiContext
from parkstream.config import Settings
from parkstream.topics_admin import apply_topics
from tests.integration.test_projector_support import fresh_database, running_projector
from tests.support.stack import running_worker


@dataclass
class ApiStack:
    settings: Settings
    ctx: ApiContext
    app: Any
    db: Any  # an asyncpg connection for set-up and checks

    def client(self, key: str | None = None, **headers: str) -> httpx.AsyncClient:
        if key is not None:
            headers["X-API-Key"] = key
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://api", headers=headers
        )

    async def tenant(self, tenant_id: str, applications: tuple[str, ...] = ()) -> None:
        await keys.ensure_tenant(self.db, tenant_id, tenant_id, applications)

    async def key(self, tenant_id: str, *scopes: str, **options: Any) -> str:
        made = await keys.create_key(self.db, tenant_id, scopes or ("admin",), **options)
        return made.token


async def until(what: str, probe: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Call ``probe`` until it returns something truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def api_stack_for_database(db_settings: Settings) -> AsyncIterator[ApiStack]:
    """The API app alone, on a database (and topics) someone else prepared."""
    async with contextlib.AsyncExitStack() as stack:
        ctx, close = await open_context(db_settings)
        stack.push_async_callback(close)
        conn = await asyncpg.connect(db_settings.database_url.get_secret_value())
        stack.push_async_callback(conn.close)
        yield ApiStack(db_settings, ctx, create_app(db_settings, context=ctx), conn)


@contextlib.asynccontextmanager
async def api_stack(
    settings: Settings, datadir: Path, *, with_worker: bool = True, **overrides: Any
) -> AsyncIterator[ApiStack]:
    settings = settings.model_copy(update=overrides)
    await apply_topics(settings)
    async with fresh_database(settings) as db_settings, contextlib.AsyncExitStack() as stack:
        if with_worker:
            await stack.enter_async_context(running_worker(db_settings, datadir, ticks=True))
            await stack.enter_async_context(running_projector(db_settings, batch_size=500))
        yield await stack.enter_async_context(api_stack_for_database(db_settings))
