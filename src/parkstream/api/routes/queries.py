"""Reads: bays with their state and explanation, history, utilisation, device health."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from parkstream.api import models as m
from parkstream.api import store
from parkstream.api.context import ApiContext, Principal, RequireRead, get_context
from parkstream.api.problems import ApiProblem, invalid, responses, with_offset
from parkstream.domain.states import SpaceState

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_context)]
SpaceId = Annotated[str, Path(pattern=m.ID_PATTERN)]
ERRORS = responses(401, 403, 404, 422, 429)
MAX_HOURS = 24 * 93
MAX_DAYS = 3660


@router.get(
    "/v1/spaces",
    tags=["spaces"],
    response_model=m.Page[m.SpaceOut],
    summary="Bays with their state and explanation",
    responses=ERRORS,
)
async def list_spaces(
    ctx: Ctx,
    site_id: Annotated[str | None, Query(pattern=m.ID_PATTERN)] = None,
    state: Annotated[list[SpaceState] | None, Query(description="Repeat to match several.")] = None,
    archived: bool | None = None,
    limit: store.Limit = store.DEFAULT_PAGE,
    cursor: store.Cursor = None,
    p: Principal = RequireRead,
) -> Response:
    # The hot path: rows become JSON without a model round trip (the tests hold the
    # output to the documented model).
    return store.json_response(
        await store.list_spaces(
            ctx.pool,
            p.tenant_id,
            site_id=site_id,
            states=[s.value for s in state] if state else None,
            archived=archived,
            limit=limit,
            cursor=cursor,
        )
    )


@router.get(
    "/v1/spaces/{space_id}",
    tags=["spaces"],
    response_model=m.SpaceOut,
    summary="One bay with its state and explanation",
    responses=ERRORS,
)
async def get_space(space_id: SpaceId, ctx: Ctx, p: Principal = RequireRead) -> Response:
    return store.json_response(
        store.space_dict(await store.space_row(ctx.pool, p.tenant_id, space_id))
    )


@router.get(
    "/v1/spaces/{space_id}/as-of",
    tags=["spaces"],
    response_model=m.SpaceAsOf,
    summary="The bay's state at a past time, folded from its events",
    description="Reads the bay's partition of space-events and folds the events that "
    "happened up to `at`; the cost grows with the retained log.",
    responses=ERRORS,
)
async def space_as_of(
    space_id: SpaceId,
    at: Annotated[datetime, Query(description="RFC 3339 time with an offset.")],
    ctx: Ctx,
    p: Principal = RequireRead,
) -> m.SpaceAsOf:
    from parkstream.api.asof import state_as_of

    when = with_offset(at, "at")
    assert when is not None
    await store.require_space(ctx.pool, p.tenant_id, space_id)
    result = await state_as_of(ctx, p.tenant_id, space_id, when)
    if result is None:
        raise ApiProblem(404, "not-found", f"space {space_id!r} did not exist at {at.isoformat()}")
    return result


@router.get(
    "/v1/spaces/{space_id}/actuations",
    tags=["spaces"],
    response_model=m.Page[m.ActuationOut],
    summary="The bay's state changes and light commands, newest first",
    responses=ERRORS,
)
async def actuations(
    space_id: SpaceId,
    ctx: Ctx,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    limit: store.Limit = store.DEFAULT_PAGE,
    cursor: store.Cursor = None,
    p: Principal = RequireRead,
) -> m.Page[m.ActuationOut]:
    await store.require_space(ctx.pool, p.tenant_id, space_id)
    after = store.decode_cursor(cursor, 2)
    args: list[Any] = [p.tenant_id, space_id]
    where = []
    if with_offset(since, "from") is not None:
        args.append(since)
        where.append(f"occurred_at >= ${len(args)}")
    if with_offset(until, "to") is not None:
        args.append(until)
        where.append(f"occurred_at < ${len(args)}")
    if after is not None:
        try:
            args.extend([datetime.fromisoformat(str(after[0])), str(after[1])])
        except ValueError:
            raise ApiProblem(422, "invalid-request", "query.cursor: not a cursor") from None
        where.append(f"(occurred_at, event_id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    fields = ", ".join(m.ActuationOut.model_fields)
    rows = await ctx.pool.fetch(
        f"SELECT {fields} FROM actuations WHERE tenant_id = $1 AND space_id = $2"
        + "".join(f" AND {w}" for w in where)
        + f" ORDER BY occurred_at DESC, event_id DESC LIMIT ${len(args)}",
        *args,
    )
    items = [m.ActuationOut(**dict(r)) for r in rows[:limit]]
    nxt = None
    if len(rows) > limit:
        last = rows[limit - 1]
        nxt = store.encode_cursor([last["occurred_at"], last["event_id"]])
    return m.Page[m.ActuationOut](items=items, next_cursor=nxt)


def _usage(r: Any) -> dict[str, Any]:
    used = float(r["free_s"]) + float(r["occupied_s"]) + float(r["reserved_s"])
    return {
        "free_s": float(r["free_s"]),
        "occupied_s": float(r["occupied_s"]),
        "reserved_s": float(r["reserved_s"]),
        "unknown_s": float(r["unknown_s"]),
        "unavailable_s": float(r["unavailable_s"]),
        "arrivals": r["arrivals"],
        "departures": r["departures"],
        "occupancy": round(float(r["occupied_s"]) / used, 6) if used > 0 else None,
    }


@router.get(
    "/v1/spaces/{space_id}/utilization",
    tags=["utilization"],
    response_model=m.SpaceUtilization,
    summary="Hourly use of a bay (UTC hours)",
    description="Closed intervals only: the current state counts once it changes. "
    "Default window: the last 24 hours.",
    responses=ERRORS,
)
async def space_utilization(
    space_id: SpaceId,
    ctx: Ctx,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    p: Principal = RequireRead,
) -> m.SpaceUtilization:
    await store.require_space(ctx.pool, p.tenant_id, space_id)
    end = with_offset(until, "to") or datetime.now(UTC)
    start = with_offset(since, "from") or end - timedelta(hours=24)
    if end <= start or end - start > timedelta(hours=MAX_HOURS):
        raise invalid(
            "query.to", "window", f"query.to: after from, at most {MAX_HOURS} hours later"
        )
    rows = await ctx.pool.fetch(
        "SELECT * FROM utilization_hourly WHERE tenant_id = $1 AND space_id = $2 "
        "AND hour >= date_trunc('hour', $3::timestamptz) AND hour < $4 ORDER BY hour",
        p.tenant_id,
        space_id,
        start,
        end,
    )
    return m.SpaceUtilization(
        space_id=space_id, hours=[m.HourUsage(hour=r["hour"], **_usage(r)) for r in rows]
    )


@router.get(
    "/v1/sites/{site_id}/utilization",
    tags=["utilization"],
    response_model=m.SiteUtilization,
    summary="Daily use of a site, in the site's time zone",
    description="Days are local days of the site (23 or 25 hours across a DST change). "
    "Default window: the last 30 days.",
    responses=ERRORS,
)
async def site_utilization(
    site_id: Annotated[str, Path(pattern=m.ID_PATTERN)],
    ctx: Ctx,
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to", description="Exclusive.")] = None,
    p: Principal = RequireRead,
) -> m.SiteUtilization:
    site = await store.get_site(ctx.pool, p.tenant_id, site_id)
    end = until or (datetime.now(UTC).date() + timedelta(days=1))
    start = since or end - timedelta(days=30)
    if end <= start or (end - start).days > MAX_DAYS:
        raise invalid("query.to", "window", f"query.to: after from, at most {MAX_DAYS} days later")
    rows = await ctx.pool.fetch(
        "SELECT * FROM utilization_daily WHERE tenant_id = $1 AND site_id = $2 "
        "AND day >= $3 AND day < $4 ORDER BY day",
        p.tenant_id,
        site_id,
        start,
        end,
    )
    return m.SiteUtilization(
        site_id=site_id,
        time_zone=site.time_zone,
        days=[m.DayUsage(day=r["day"], **_usage(r)) for r in rows],
    )


@router.get(
    "/v1/devices",
    tags=["devices"],
    response_model=m.Page[m.DeviceHealth],
    summary="Health of the tenant's devices",
    responses=ERRORS,
)
async def devices(
    ctx: Ctx,
    liveness: Annotated[str | None, Query(pattern="^(unknown|alive|silent)$")] = None,
    role: Annotated[str | None, Query(pattern="^(sensor|display)$")] = None,
    limit: store.Limit = store.DEFAULT_PAGE,
    cursor: store.Cursor = None,
    p: Principal = RequireRead,
) -> m.Page[m.DeviceHealth]:
    after = store.decode_cursor(cursor, 1)
    args: list[Any] = [p.tenant_id]
    where = []
    for column, value in (("liveness", liveness), ("role", role)):
        if value is not None:
            args.append(value)
            where.append(f"d.{column} = ${len(args)}")
    if after is not None:
        args.append(str(after[0]))
        where.append(f"d.dev_eui > ${len(args)}")
    args.append(limit + 1)
    health = await _health_source(ctx)
    rows = await ctx.pool.fetch(
        f"SELECT d.*{health[0]} FROM devices d {health[1]} WHERE d.tenant_id = $1"
        + "".join(f" AND {w}" for w in where)
        + f" ORDER BY d.dev_eui LIMIT ${len(args)}",
        *args,
    )
    items = [
        m.DeviceHealth(
            dev_eui=r["dev_eui"],
            role=r["role"],
            space_id=r["space_id"],
            assigned=r["assigned"],
            decoder=r["decoder"],
            liveness=r["liveness"],
            last_seen_at=r["last_seen_at"],
            silent_since=r["silent_since"],
            last_reading=r["last_reading"],
            last_f_cnt=r["last_f_cnt"],
            health=r.get("health") if health[0] else None,
        )
        for r in rows[:limit]
    ]
    nxt = store.encode_cursor([rows[limit - 1]["dev_eui"]]) if len(rows) > limit else None
    return m.Page[m.DeviceHealth](items=items, next_cursor=nxt)


async def _health_source(ctx: ApiContext) -> tuple[str, str]:
    """Radio/battery figures come from the ``device_health`` projection where it exists."""
    cached = ctx.extras.get("device_health_sql")
    if cached is None:
        exists = await ctx.pool.fetchval("SELECT to_regclass('device_health') IS NOT NULL")
        cached = (
            (
                ", to_jsonb(h) - 'dev_eui' AS health",
                "LEFT JOIN device_health h ON h.dev_eui = d.dev_eui",
            )
            if exists
            else ("", "")
        )
        ctx.extras["device_health_sql"] = cached
    return cached
