"""Reservations: the fold decides; the request waits a bounded time for its decision.

``POST`` sends a ``reservation.create`` command and then watches the read model for the
outcome of its request id: 201 with the reservation when the bay confirmed it, 409 naming
the conflicting reservation (or the reason) when it refused, and 202 with a status link
when no decision arrived within ``PARKSTREAM_API_COMMAND_WAIT_S`` (5 s by default).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from parkstream.api import models as m
from parkstream.api import store
from parkstream.api.context import (
    ApiContext,
    Principal,
    ProjectionSignal,
    RequireRead,
    RequireWrite,
    get_context,
)
from parkstream.api.idempotency import IdempotencyKey, claim, new_id
from parkstream.api.problems import ApiProblem, invalid, responses, with_offset
from parkstream.domain import commands as cmd
from parkstream.domain.ids import derive_id

router = APIRouter(tags=["reservations"])
Ctx = Annotated[ApiContext, Depends(get_context)]
SpaceId = Annotated[str, Path(pattern=m.ID_PATTERN)]
POLL_S = (0.01, 0.02, 0.05, 0.1)
# Reasons that are the bay's answer to a valid request (409); the rest are invalid input.
CONFLICT_REASONS = {"overlap", "archived", "duplicate_id"}


async def wait_for_outcome(
    ctx: ApiContext, tenant: str, request_id: str, reservation_id: str, wait_s: float
) -> m.ReservationRequestOut:
    """Poll the read model, woken early by the projector's commit notifications."""
    deadline = time.monotonic() + wait_s
    signal: ProjectionSignal | None = ctx.extras.get("projection_signal")
    step = 0
    while True:
        outcome = await store.reservation_outcome(ctx.pool, tenant, request_id, reservation_id)
        left = deadline - time.monotonic()
        if outcome.status != "pending" or left <= 0:
            return outcome
        pause = min(POLL_S[min(step, len(POLL_S) - 1)], left)
        step += 1
        if signal is not None:
            await signal.wait(pause)
        else:
            await asyncio.sleep(pause)


def _answer(outcome: m.ReservationRequestOut, reservation_id: str, response: Response) -> Any:
    status_url = f"/v1/reservation-requests/{outcome.request_id}"
    if outcome.status == "confirmed":
        response.status_code = 201
        response.headers["Location"] = f"/v1/reservations/{reservation_id}"
        return outcome.reservation
    if outcome.status == "rejected":
        reason = outcome.reason or "rejected"
        if reason in CONFLICT_REASONS:
            detail = (
                f"the bay has reservation {outcome.conflicting_reservation_id!r} at that time"
                if outcome.conflicting_reservation_id
                else f"the bay refused the reservation: {reason}"
            )
            raise ApiProblem(
                409,
                "reservation-conflict",
                detail,
                reason=reason,
                conflicting_reservation_id=outcome.conflicting_reservation_id,
            )
        raise ApiProblem(
            422,
            "reservation-refused",
            f"the bay refused the reservation: {reason}",
            reason=reason,
        )
    response.status_code = 202
    response.headers["Location"] = status_url
    return m.ReservationPending(
        request_id=outcome.request_id, reservation_id=reservation_id, status_url=status_url
    )


@router.post(
    "/v1/spaces/{space_id}/reservations",
    status_code=201,
    response_model=m.ReservationOut | m.ReservationPending,
    summary="Reserve a bay for a time window",
    responses={
        202: {"model": m.ReservationPending, "description": "No decision within the wait"},
        **responses(401, 403, 404, 409, 422, 429),
    },
)
async def create_reservation(
    space_id: SpaceId,
    body: m.ReservationIn,
    response: Response,
    ctx: Ctx,
    idempotency_key: IdempotencyKey = None,
    p: Principal = RequireWrite,
) -> Any:
    if body.ends_at <= body.starts_at:
        raise invalid(
            "body.ends_at", "not after starts_at", "body.ends_at: must be after starts_at"
        )
    await store.require_space(ctx.pool, p.tenant_id, space_id)
    route = f"POST /v1/spaces/{space_id}/reservations"
    reservation_id, _ = await claim(
        ctx.pool, p.tenant_id, idempotency_key, route, body.model_dump(mode="json"), new_id("rsv")
    )
    request_id = derive_id("reservation-request", p.tenant_id, reservation_id)
    await ctx.pool.execute(
        "INSERT INTO reservation_requests (tenant_id, request_id, space_id, reservation_id) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        p.tenant_id,
        request_id,
        space_id,
        reservation_id,
    )
    command = ctx.commands.build(
        cmd.CreateReservation,
        p.tenant_id,
        space_id,
        cmd.CreateReservationData(
            reservation_id=reservation_id,
            request_id=request_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            grace_s=body.grace_s,
            kind=body.kind,
            external_ref=body.external_ref,
        ),
        request_key=request_id,
    )
    # A retry sends the same command again (same id): the fold ignores the repeat.
    await ctx.commands.send(command)
    outcome = await wait_for_outcome(
        ctx, p.tenant_id, request_id, reservation_id, ctx.settings.api_command_wait_s
    )
    ctx.metrics.reservation_outcomes.labels(outcome.status).inc()
    return _answer(outcome, reservation_id, response)


@router.get(
    "/v1/reservation-requests/{request_id}",
    response_model=m.ReservationRequestOut,
    summary="What the bay decided about a reservation request",
    responses=responses(401, 403, 404, 422, 429),
)
async def reservation_request(
    request_id: Annotated[str, Path(pattern=m.ID_PATTERN)], ctx: Ctx, p: Principal = RequireRead
) -> m.ReservationRequestOut:
    row = await ctx.pool.fetchrow(
        "SELECT reservation_id FROM reservation_requests WHERE tenant_id = $1 AND request_id = $2",
        p.tenant_id,
        request_id,
    )
    if row is None:
        raise ApiProblem(404, "not-found", f"no reservation request {request_id!r} in this tenant")
    return await store.reservation_outcome(ctx.pool, p.tenant_id, request_id, row["reservation_id"])


@router.get(
    "/v1/reservations",
    response_model=m.Page[m.ReservationOut],
    summary="List reservations",
    responses=responses(401, 403, 422, 429),
)
async def list_reservations(
    ctx: Ctx,
    space_id: Annotated[str | None, Query(pattern=m.ID_PATTERN)] = None,
    status: Annotated[
        list[m.ReservationStatus] | None, Query(description="Repeat to match several.")
    ] = None,
    starts_from: Annotated[datetime | None, Query(alias="from", description="Ending after")] = None,
    starts_to: Annotated[datetime | None, Query(alias="to", description="Starting before")] = None,
    limit: store.Limit = store.DEFAULT_PAGE,
    cursor: store.Cursor = None,
    p: Principal = RequireRead,
) -> m.Page[m.ReservationOut]:
    return await store.list_reservations(
        ctx.pool,
        p.tenant_id,
        space_id=space_id,
        status=list(status) if status else None,
        starts_from=with_offset(starts_from, "from"),
        starts_to=with_offset(starts_to, "to"),
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/v1/reservations/{reservation_id}",
    response_model=m.ReservationOut,
    summary="One reservation",
    responses=responses(401, 403, 404, 422, 429),
)
async def get_reservation(
    reservation_id: Annotated[str, Path(pattern=m.ID_PATTERN)], ctx: Ctx, p: Principal = RequireRead
) -> m.ReservationOut:
    found = await store.get_reservation(ctx.pool, p.tenant_id, reservation_id)
    if found is None:
        raise ApiProblem(404, "not-found", f"no reservation {reservation_id!r} in this tenant")
    return found


@router.delete(
    "/v1/reservations/{reservation_id}",
    status_code=202,
    response_model=m.Accepted,
    summary="Cancel a reservation",
    responses=responses(401, 403, 404, 422, 429),
)
async def cancel_reservation(
    reservation_id: Annotated[str, Path(pattern=m.ID_PATTERN)],
    response: Response,
    ctx: Ctx,
    reason: Annotated[str, Query(max_length=500, pattern=m.TEXT_PATTERN)] = "",
    p: Principal = RequireWrite,
) -> m.Accepted:
    found = await store.get_reservation(ctx.pool, p.tenant_id, reservation_id)
    if found is None:
        raise ApiProblem(404, "not-found", f"no reservation {reservation_id!r} in this tenant")
    command = ctx.commands.build(
        cmd.CancelReservation,
        p.tenant_id,
        found.space_id,
        cmd.CancelReservationData(reservation_id=reservation_id, reason=reason),
    )
    await ctx.commands.send(command)
    location = f"/v1/reservations/{reservation_id}"
    response.headers["Location"] = location
    return m.Accepted(command_id=command.event_id, space_id=found.space_id, location=location)


@router.get(
    "/v1/sites/{site_id}/availability",
    response_model=m.AvailabilityOut,
    summary="Bays of a site free of reservations and blocking overrides over a window",
    responses=responses(401, 403, 404, 422, 429),
)
async def availability(
    site_id: Annotated[str, Path(pattern=m.ID_PATTERN)],
    starts_at: Annotated[datetime, Query(alias="from")],
    ends_at: Annotated[datetime, Query(alias="to")],
    ctx: Ctx,
    p: Principal = RequireRead,
) -> m.AvailabilityOut:
    with_offset(starts_at, "from")
    with_offset(ends_at, "to")
    if ends_at <= starts_at:
        raise invalid("query.to", "not after from", "query.to: must be after from")
    await store.get_site(ctx.pool, p.tenant_id, site_id)
    rows = await ctx.pool.fetch(
        """
        SELECT s.space_id, s.code, s.name, st.state,
               NOT s.archived
               AND NOT coalesce(
                   s.override_state IN ('OUT_OF_ORDER', 'MAINTENANCE', 'BLOCKED', 'OCCUPIED',
                                        'RESERVED')
                   AND (s.override_until IS NULL OR s.override_until > $3), false)
               AND NOT EXISTS (
                   SELECT 1 FROM reservations r
                   WHERE r.tenant_id = s.tenant_id AND r.space_id = s.space_id
                     AND r.status IN ('confirmed', 'started', 'fulfilled')
                     AND r.starts_at < $4 AND r.ends_at > $3) AS available
        FROM spaces s LEFT JOIN space_states st
          ON st.tenant_id = s.tenant_id AND st.space_id = s.space_id
        WHERE s.tenant_id = $1 AND s.site_id = $2 AND s.registered_at IS NOT NULL
        ORDER BY s.code, s.space_id
        """,
        p.tenant_id,
        site_id,
        starts_at,
        ends_at,
    )
    return m.AvailabilityOut(
        site_id=site_id,
        starts_at=starts_at,
        ends_at=ends_at,
        total=len(rows),
        available=[
            m.SpaceBrief(space_id=r["space_id"], code=r["code"], name=r["name"], state=r["state"])
            for r in rows
            if r["available"]
        ],
    )
