"""The live dashboard: the lot as its lights show it, why each bay is in its state, how the
bays were used, and whether the pipeline keeps up.

``GET /dashboard`` serves a static page (plain HTML, CSS and JavaScript, nothing fetched
from elsewhere). The page takes the API key from its URL fragment (``#key=...``, which a
browser never sends to a server) and calls the endpoints below with ``X-API-Key``; each
answers for the key's tenant only. ``/dashboard/stream`` is a server-sent event stream:
the bays whose row in the read model changed (looked at once a second) and the counters.

The dead-letter and lag counters are system-wide, as the records they count belong to no
tenant: the records held in ``deadletter.v1``, and per projection the ``space-events``
records not yet applied (the topic's fetch high-watermark minus ``projector_offsets``).
The high-watermarks come from a consumer that follows the end of both topics, started
with the first request that needs it (``end_offsets()`` is not used: the test broker
answers it wrongly). These endpoints serve the page, not integrators, and stay out of the
OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from parkstream.api.context import (
    ApiContext,
    Principal,
    RequireRead,
    api_key_header,
    get_context,
)
from parkstream.api.problems import ApiProblem
from parkstream.config import Settings
from parkstream.logging import get_logger

log = get_logger("parkstream.api.dashboard")

router = APIRouter(include_in_schema=False)

POLL_S = 1.0
COUNTERS_EVERY_S = 5.0
KEEPALIVE_S = 15.0
REVERIFY_S = 30.0
DEADLETTER_TOPIC = "deadletter.v1"
SPACE_EVENTS_TOPIC = "space-events.v1"

_STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _static(name: str) -> bytes:
    return (resources.files("parkstream.api") / "static" / name).read_bytes()


@router.get("/dashboard", response_class=HTMLResponse)
async def page() -> Response:
    return Response(_static("dashboard.html"), media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/dashboard/static/{name}")
async def static(name: str) -> Response:
    if name not in _STATIC:
        raise ApiProblem(404, "not-found", f"no file {name!r}")
    return Response(_static(name), media_type=_STATIC[name], headers=_PAGE_HEADERS)


# --- bays ---------------------------------------------------------------------------------------

_BAYS_SQL = """
SELECT s.space_id, s.site_id, s.code, s.name,
       st.state, st.since, st.layer, st.summary,
       st.next_change_at, st.next_state, st.next_change_reason,
       st.desired_frame, st.desired_for_state, st.desired_command_id, st.desired_at,
       st.confirmed_frame, st.confirmed_command_id, st.confirmed_evidence, st.confirmed_at
FROM spaces s
LEFT JOIN space_states st ON st.tenant_id = s.tenant_id AND st.space_id = s.space_id
WHERE s.tenant_id = $1 AND NOT s.archived {extra}
ORDER BY s.site_id NULLS LAST, s.code NULLS LAST, s.space_id
"""


def light_of(frame_hex: str | None) -> dict[str, Any] | None:
    """What a Kuando colour frame ``[R, B, G, on, off]`` shows: ``#rrggbb`` and blinking."""
    if not frame_hex or len(frame_hex) != 10:
        return None
    try:
        raw = bytes.fromhex(frame_hex)
    except ValueError:
        return None
    red, blue, green, on, off = raw
    lit = on > 0 and (red, green, blue) != (0, 0, 0)
    return {
        "colour": f"#{red:02x}{green:02x}{blue:02x}" if lit else "#000000",
        "blink": lit and off > 0,
    }


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None


def bay_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """One bay as the page draws it: its state, and what its light shows and should show."""
    desired, confirmed = row["desired_frame"], row["confirmed_frame"]
    newer_request = (
        row["desired_at"] is not None
        and row["desired_command_id"] != row["confirmed_command_id"]
        and (row["confirmed_at"] is None or row["desired_at"] > row["confirmed_at"])
    )
    next_change = None
    if row["next_change_at"] is not None:
        next_change = {
            "at": _iso(row["next_change_at"]),
            "state": row["next_state"],
            "reason": row["next_change_reason"],
        }
    return {
        "space_id": row["space_id"],
        "site_id": row["site_id"],
        "code": row["code"],
        "name": row["name"],
        "state": row["state"],
        "since": _iso(row["since"]),
        "layer": row["layer"],
        "summary": row["summary"],
        "next_change": next_change,
        "light": {
            "shows": light_of(confirmed),
            "wants": light_of(desired),
            "wants_for_state": row["desired_for_state"],
            "pending": desired is not None and (desired != confirmed or newer_request),
            "evidence": row["confirmed_evidence"],
            "confirmed_at": _iso(row["confirmed_at"]),
            "requested_at": _iso(row["desired_at"]),
        },
    }


async def load_bays(pool: Any, tenant_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(_BAYS_SQL.format(extra=""), tenant_id)
    return [bay_view(r) for r in rows]


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


@router.get("/dashboard/bays")
async def bays(
    principal: Principal = RequireRead, ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    return {
        "tenant_id": principal.tenant_id,
        "bays": await load_bays(ctx.pool, principal.tenant_id),
    }


@router.get("/dashboard/bays/{space_id}")
async def bay(
    space_id: str, principal: Principal = RequireRead, ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """A bay with its explanation, its devices and its latest changes."""
    tenant = principal.tenant_id
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow(_BAYS_SQL.format(extra="AND s.space_id = $2"), tenant, space_id)
        if row is None:
            raise ApiProblem(404, "not-found", f"no bay {space_id!r} in this tenant")
        explanation = _json(
            await conn.fetchval(
                "SELECT explanation FROM space_states WHERE tenant_id = $1 AND space_id = $2",
                tenant,
                space_id,
            )
        )
        devices = await conn.fetch(
            "SELECT dev_eui, role, liveness, last_seen_at, last_reading FROM devices "
            "WHERE tenant_id = $1 AND space_id = $2 AND assigned ORDER BY role, dev_eui",
            tenant,
            space_id,
        )
        changes = await conn.fetch(
            "SELECT occurred_at, event_id, from_state, to_state, layer, summary FROM actuations "
            "WHERE tenant_id = $1 AND space_id = $2 AND type = 'space.state_changed' "
            "ORDER BY occurred_at DESC, src_offset DESC LIMIT 10",
            tenant,
            space_id,
        )
    return {
        **bay_view(row),
        "explanation": explanation,
        "devices": [
            {
                "dev_eui": d["dev_eui"],
                "role": d["role"],
                "liveness": d["liveness"],
                "last_seen_at": _iso(d["last_seen_at"]),
                "last_reading": d["last_reading"],
            }
            for d in devices
        ],
        "changes": [
            {
                "at": _iso(c["occurred_at"]),
                "event_id": c["event_id"],
                "from": c["from_state"],
                "to": c["to_state"],
                "layer": c["layer"],
                "summary": c["summary"],
            }
            for c in changes
        ],
    }


# --- utilisation --------------------------------------------------------------------------------

# Closed intervals come from the hourly rollup; each bay's open interval (its current
# state since ``since``) is added up to now, so the current hour is not empty. The
# classes are the rollup's: FREE and RESERVED_SOON count as free, the overrides as
# unavailable, ARCHIVED nowhere.
_UTILIZATION_SQL = """
WITH hours AS (
    SELECT generate_series(
        date_trunc('hour', $2::timestamptz) - make_interval(hours => $3 - 1),
        date_trunc('hour', $2::timestamptz),
        interval '1 hour'
    ) AS hour
),
closed AS (
    SELECT hour, sum(free_s) AS free_s, sum(occupied_s) AS occupied_s,
           sum(reserved_s) AS reserved_s, sum(unknown_s) AS unknown_s,
           sum(unavailable_s) AS unavailable_s, sum(arrivals) AS arrivals,
           sum(departures) AS departures
    FROM utilization_hourly
    WHERE tenant_id = $1 AND hour >= (SELECT min(hour) FROM hours)
    GROUP BY hour
),
open AS (
    SELECT h.hour, st.state,
           extract(epoch FROM least(h.hour + interval '1 hour', $2::timestamptz)
                             - greatest(h.hour, st.since)) AS s
    FROM hours h
    JOIN space_states st
      ON st.tenant_id = $1
     AND st.since < least(h.hour + interval '1 hour', $2::timestamptz)
     AND st.state IS NOT NULL
),
opened AS (
    SELECT hour,
           sum(s) FILTER (WHERE state IN ('FREE', 'RESERVED_SOON')) AS free_s,
           sum(s) FILTER (WHERE state = 'OCCUPIED') AS occupied_s,
           sum(s) FILTER (WHERE state = 'RESERVED') AS reserved_s,
           sum(s) FILTER (WHERE state = 'UNKNOWN') AS unknown_s,
           sum(s) FILTER (WHERE state IN ('OUT_OF_ORDER', 'MAINTENANCE', 'BLOCKED'))
               AS unavailable_s
    FROM open WHERE s > 0
    GROUP BY hour
)
SELECT h.hour,
       coalesce(c.free_s, 0) + coalesce(o.free_s, 0) AS free_s,
       coalesce(c.occupied_s, 0) + coalesce(o.occupied_s, 0) AS occupied_s,
       coalesce(c.reserved_s, 0) + coalesce(o.reserved_s, 0) AS reserved_s,
       coalesce(c.unknown_s, 0) + coalesce(o.unknown_s, 0) AS unknown_s,
       coalesce(c.unavailable_s, 0) + coalesce(o.unavailable_s, 0) AS unavailable_s,
       coalesce(c.arrivals, 0) AS arrivals,
       coalesce(c.departures, 0) AS departures
FROM hours h
LEFT JOIN closed c ON c.hour = h.hour
LEFT JOIN opened o ON o.hour = h.hour
ORDER BY h.hour
"""
_CLASSES = ("free_s", "occupied_s", "reserved_s", "unknown_s", "unavailable_s")


@router.get("/dashboard/utilization")
async def utilization(
    hours: int = Query(24, ge=1, le=168),
    principal: Principal = RequireRead,
    ctx: ApiContext = Depends(get_context),
) -> dict[str, Any]:
    """Seconds per state class in each of the last ``hours`` hours, summed over the bays."""
    now = datetime.now(UTC)
    rows = await ctx.pool.fetch(_UTILIZATION_SQL, principal.tenant_id, now, hours)
    return {
        "now": _iso(now),
        "hours": [
            {
                "hour": _iso(r["hour"]),
                **{k: round(float(r[k]), 1) for k in _CLASSES},
                "arrivals": int(r["arrivals"]),
                "departures": int(r["departures"]),
            }
            for r in rows
        ],
    }


# --- counters -----------------------------------------------------------------------------------


class TopicEnds:
    """Follows the end of some topics and knows each partition's fetch high-watermark.

    Every fetch response carries the partition's high-watermark, also an empty one, so a
    consumer reading (and dropping) the tail keeps them current.
    """

    def __init__(self, settings: Settings, topics: tuple[str, ...]) -> None:
        self.settings = settings
        self.topics = tuple(settings.topic(t) for t in topics)
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._parts: dict[str, list[int]] = {}
        self._starts: dict[tuple[str, int], int] = {}

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from parkstream.kafka_profile import aiokafka_consumer_kwargs

        self._consumer = AIOKafkaConsumer(
            **aiokafka_consumer_kwargs(
                self.settings,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
            )
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        from aiokafka import TopicPartition

        consumer = self._consumer
        while not self._parts:  # the topics may not exist yet
            try:
                known = await consumer.topics()
                found = {t: sorted(consumer.partitions_for_topic(t) or ()) for t in self.topics}
                if all(t in known and found[t] for t in self.topics):
                    tps = [TopicPartition(t, p) for t, ps in found.items() for p in ps]
                    consumer.assign(tps)
                    await consumer.seek_to_end(*tps)
                    starts = await consumer.beginning_offsets(tps)
                    self._starts = {(tp.topic, tp.partition): o for tp, o in starts.items()}
                    self._parts = found
                    continue
            except Exception as exc:  # the broker may not be up yet: try again
                log.warning("topic ends unavailable", error=repr(exc))
            await asyncio.sleep(2.0)
        while True:
            try:
                await consumer.getmany(timeout_ms=1000, max_records=10_000)
            except Exception as exc:  # keep following; the counters say "unknown" meanwhile
                log.warning("following topic ends failed", error=repr(exc))
                await asyncio.sleep(1.0)

    def held(self, topic: str) -> dict[int, int] | None:
        """Records held per partition (high-watermark minus the first offset), once known."""
        from aiokafka import TopicPartition

        full = self.settings.topic(topic)
        parts = self._parts.get(full)
        if not parts or self._consumer is None:
            return None
        found: dict[int, int] = {}
        for p in parts:
            high = self._consumer.highwater(TopicPartition(full, p))
            if high is None:
                return None
            found[p] = high
        return found

    def first_offset(self, topic: str, partition: int) -> int:
        return self._starts.get((self.settings.topic(topic), partition), 0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


async def topic_ends(ctx: ApiContext) -> TopicEnds:
    """The process's one :class:`TopicEnds`, started on first use and closed with the app."""
    ends: TopicEnds | None = ctx.extras.get("dashboard_topic_ends")
    if ends is not None:
        return ends
    async with ctx.extras.setdefault("dashboard_topic_ends_lock", asyncio.Lock()):
        ends = ctx.extras.get("dashboard_topic_ends")
        if ends is None:
            ends = TopicEnds(ctx.settings, (DEADLETTER_TOPIC, SPACE_EVENTS_TOPIC))
            await ends.start()
            ctx.extras["dashboard_topic_ends"] = ends
            ctx.extras.setdefault("closers", []).append(ends.stop)
    return ends


async def load_counters(ctx: ApiContext, tenant_id: str) -> dict[str, Any]:
    states = await ctx.pool.fetch(
        "SELECT st.state, count(*) AS n FROM spaces s JOIN space_states st "
        "ON st.tenant_id = s.tenant_id AND st.space_id = s.space_id "
        "WHERE s.tenant_id = $1 AND NOT s.archived GROUP BY st.state",
        tenant_id,
    )
    offsets = await ctx.pool.fetch(
        "SELECT projection, partition, next_offset, updated_at FROM projector_offsets "
        "WHERE topic = $1 ORDER BY projection, partition",
        ctx.settings.topic(SPACE_EVENTS_TOPIC),
    )
    deadletters: int | None = None
    projections: list[dict[str, Any]] = []
    lag: int | None = None
    try:
        ends = await topic_ends(ctx)
    except Exception as exc:  # the broker is down: the counters say "unknown", not an error
        log.warning("topic ends unavailable", error=repr(exc))
    else:
        held = ends.held(DEADLETTER_TOPIC)
        if held is not None:
            deadletters = sum(
                max(0, h - ends.first_offset(DEADLETTER_TOPIC, p)) for p, h in held.items()
            )
        highs = ends.held(SPACE_EVENTS_TOPIC)
        if highs is not None:
            applied: dict[str, dict[int, int]] = {}
            updated: dict[str, datetime] = {}
            for r in offsets:
                applied.setdefault(r["projection"], {})[r["partition"]] = r["next_offset"]
                updated[r["projection"]] = max(
                    r["updated_at"], updated.get(r["projection"], r["updated_at"])
                )
            for name, by_partition in sorted(applied.items()):
                behind = sum(max(0, high - by_partition.get(p, 0)) for p, high in highs.items())
                projections.append(
                    {"projection": name, "lag": behind, "updated_at": _iso(updated[name])}
                )
            if projections:
                lag = max(p["lag"] for p in projections)
            elif not any(highs.values()):
                lag = 0
    return {
        "as_of": _iso(datetime.now(UTC)),
        "states": {r["state"]: int(r["n"]) for r in states if r["state"] is not None},
        "deadletters": deadletters,
        "projector_lag": lag,
        "projections": projections,
    }


@router.get("/dashboard/counters")
async def counters(
    principal: Principal = RequireRead, ctx: ApiContext = Depends(get_context)
) -> dict[str, Any]:
    """The tenant's bays per state; dead letters and projector lag of the whole system."""
    return await load_counters(ctx, principal.tenant_id)


# --- the live stream ----------------------------------------------------------------------------


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _changes(
    request: Request, ctx: ApiContext, principal: Principal, token: str
) -> AsyncIterator[bytes]:
    tenant = principal.tenant_id
    sent: dict[str, dict[str, Any]] = {}
    first = True
    last_counters = last_write = last_verified = time.monotonic()
    counters_due = True
    # Ends when the client goes, or when the server drains for a shutdown (an endless
    # stream would otherwise hold the shutdown for its whole grace period).
    while not await request.is_disconnected() and not getattr(request.app.state, "draining", False):
        now = time.monotonic()
        if now - last_verified >= REVERIFY_S:
            last_verified = now
            try:
                await ctx.verifier.verify(token)
            except ApiProblem as problem:
                yield _event("end", {"status": problem.status, "detail": problem.detail})
                return
        current = {b["space_id"]: b for b in await load_bays(ctx.pool, tenant)}
        if first:
            yield _event("snapshot", {"tenant_id": tenant, "bays": list(current.values())})
            first, last_write = False, now
        else:
            changed = [b for sid, b in current.items() if sent.get(sid) != b]
            removed = [sid for sid in sent if sid not in current]
            if changed or removed:
                yield _event("bays", {"changed": changed, "removed": removed})
                last_write = now
        sent = current
        if counters_due or now - last_counters >= COUNTERS_EVERY_S:
            yield _event("counters", await load_counters(ctx, tenant))
            counters_due, last_counters, last_write = False, now, now
        if now - last_write >= KEEPALIVE_S:
            yield b": keep-alive\n\n"
            last_write = now
        await asyncio.sleep(POLL_S)


@router.get("/dashboard/stream")
async def stream(
    request: Request,
    principal: Principal = RequireRead,
    ctx: ApiContext = Depends(get_context),
    token: str | None = Depends(api_key_header),
) -> StreamingResponse:
    """Server-sent events: ``snapshot`` first, then ``bays`` (changed bays) and ``counters``."""
    assert token is not None  # RequireRead has verified it
    return StreamingResponse(
        _changes(request, ctx, principal, token),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
