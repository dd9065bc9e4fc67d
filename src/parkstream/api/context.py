"""What every request handler shares: settings, the database pool, the command sender,
the key verifier, the rate limiter and the metrics; and the dependencies that turn an
``X-API-Key`` header into the tenant a request may see."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from prometheus_client import CollectorRegistry, Counter, Histogram

from parkstream.api import keys
from parkstream.api.problems import ApiProblem
from parkstream.config import Settings

API_KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="A tenant's API key (`parkstream apikey create`).",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: one key of one tenant, with its scopes."""

    tenant_id: str
    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass
class _Cached:
    principal: Principal | None
    secret_sha256: bytes
    refusal: str | None  # "revoked" | "expired"
    expires_at: datetime | None
    checked_at: float


@dataclass
class KeyVerifier:
    """Checks keys against ``api_keys``, trusting a verified key for ``ttl`` seconds.

    ``last_used_at`` is written at most once a minute per key, off the request path.
    """

    pool: Any
    ttl: float
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _last_write: dict[str, float] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def verify(self, token: str | None) -> Principal:
        if not token:
            raise ApiProblem(
                401,
                "unauthorized",
                f"the {API_KEY_HEADER} header is missing",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )
        parsed = keys.parse(token)
        if parsed is None:
            raise ApiProblem(
                401,
                "unauthorized",
                "the API key is malformed",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )
        key_id, secret = parsed
        now = time.monotonic()
        entry = self._cache.get(key_id)
        if entry is None or now - entry.checked_at > self.ttl:
            entry = await self._load(key_id, now)
        if entry is None or not keys.matches(secret, entry.secret_sha256):
            raise ApiProblem(
                401,
                "unauthorized",
                "the API key is not valid",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )
        if (
            entry.refusal is None
            and entry.expires_at is not None
            and (entry.expires_at <= datetime.now(UTC))
        ):
            entry.refusal = "expired"
        if entry.refusal is not None or entry.principal is None:
            raise ApiProblem(403, "forbidden", f"the API key is {entry.refusal}")
        self._touch(key_id, now)
        return entry.principal

    async def _load(self, key_id: str, now: float) -> _Cached | None:
        row = await self.pool.fetchrow(
            "SELECT tenant_id, secret_sha256, scopes, expires_at, revoked_at "
            "FROM api_keys WHERE key_id = $1",
            key_id,
        )
        if row is None:
            self._cache.pop(key_id, None)
            return None
        refusal = "revoked" if row["revoked_at"] is not None else None
        entry = _Cached(
            Principal(row["tenant_id"], key_id, frozenset(row["scopes"])),
            bytes(row["secret_sha256"]),
            refusal,
            row["expires_at"],
            now,
        )
        self._cache[key_id] = entry
        return entry

    def _touch(self, key_id: str, now: float) -> None:
        if now - self._last_write.get(key_id, -1e9) < 60:
            return
        self._last_write[key_id] = now
        task = asyncio.create_task(self._write_last_used(key_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_last_used(self, key_id: str) -> None:
        # Bookkeeping only: the request has been served whatever happens here.
        with contextlib.suppress(Exception):
            await self.pool.execute(
                "UPDATE api_keys SET last_used_at = now() WHERE key_id = $1", key_id
            )


@dataclass
class RateLimits:
    """Per key and per tenant, reads and writes counted apart (sliding window counters)."""

    read_key: RateLimitItem
    read_tenant: RateLimitItem
    write_key: RateLimitItem
    write_tenant: RateLimitItem
    limiter: SlidingWindowCounterRateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        uri = settings.api_rate_storage
        if not uri.startswith("async+"):
            uri = "async+" + uri
        return cls(
            parse(settings.api_rate_read_key),
            parse(settings.api_rate_read_tenant),
            parse(settings.api_rate_write_key),
            parse(settings.api_rate_write_tenant),
            SlidingWindowCounterRateLimiter(storage_from_string(uri)),
        )

    async def hit(self, principal: Principal, kind: str) -> dict[str, str]:
        """Count one request; the rate-limit headers, or a 429 problem when over a limit."""
        per_key, per_tenant = (
            (self.read_key, self.read_tenant)
            if kind == "read"
            else (self.write_key, self.write_tenant)
        )
        headers: dict[str, str] = {}
        for item, who in (
            (per_tenant, "tenant:" + principal.tenant_id),
            (per_key, "key:" + principal.key_id),
        ):
            allowed = await self.limiter.hit(item, kind, who)
            stats = await self.limiter.get_window_stats(item, kind, who)
            reset = max(0, int(stats.reset_time - time.time()) + 1)
            headers = {
                "X-RateLimit-Limit": str(item.amount),
                "X-RateLimit-Remaining": str(stats.remaining),
                "X-RateLimit-Reset": str(reset),
            }
            if not allowed:
                scope = who.split(":", 1)[0]
                raise ApiProblem(
                    429,
                    "rate-limited",
                    f"too many {kind} requests for this {scope}: {item.amount} per "
                    f"{item.get_expiry()} s",
                    headers={**headers, "Retry-After": str(reset)},
                )
        return headers


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "parkstream_api_requests",
            "HTTP requests served, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "parkstream_api_request_seconds",
            "Time to serve a request, by route template",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.commands = Counter(
            "parkstream_api_commands",
            "Commands sent to space-commands, by type",
            ["type"],
            registry=self.registry,
        )
        self.reservation_outcomes = Counter(
            "parkstream_api_reservation_outcomes",
            "Reservation requests by outcome (confirmed, rejected, pending after the wait)",
            ["outcome"],
            registry=self.registry,
        )


class ProjectionSignal:
    """Set when the projector commits a batch (PostgreSQL ``NOTIFY parkstream_projection``)."""

    CHANNEL = "parkstream_projection"

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, *_: Any) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seconds: float) -> bool:
        """True when a commit happened within ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


@dataclass
class ApiContext:
    settings: Settings
    pool: Any  # asyncpg.Pool
    commands: Any  # parkstream.api.commands.CommandSender
    verifier: KeyVerifier
    limits: RateLimits
    metrics: ApiMetrics
    extras: dict[str, Any] = field(default_factory=dict)


async def get_context(request: Request) -> ApiContext:
    # async: FastAPI runs a plain function dependency in a worker thread.
    ctx: ApiContext = request.app.state.ctx
    return ctx


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal, if its key has ``scope``; counts the rate limit."""
    kind = "read" if scope == "read" else "write"

    async def dependency(
        request: Request,
        token: str | None = Depends(api_key_header),
        ctx: ApiContext = Depends(get_context),
    ) -> Principal:
        principal = await ctx.verifier.verify(token)
        if not principal.allows(scope):
            raise ApiProblem(403, "forbidden", f"this API key lacks the {scope!r} scope")
        request.state.rate_headers = await ctx.limits.hit(principal, kind)
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


RequireRead = Depends(require("read"))
RequireWrite = Depends(require("write"))
RequireAdmin = Depends(require("admin"))
