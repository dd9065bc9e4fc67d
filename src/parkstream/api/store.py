"""The API's SQL: every statement names the tenant first, so no row of another tenant
can be read or written. Rows become response models here."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Query, Response

from parkstream.api import models as m
from parkstream.api.problems import ApiProblem, invalid

MAX_PAGE = 500
DEFAULT_PAGE = 50
# The paging parameters every list shares.
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")]
Cursor = Annotated[
    str | None,
    Query(pattern=m.CURSOR_PATTERN, description="`next_cursor` of the previous page."),
]


def encode_cursor(values: list[Any]) -> str:
    raw = orjson.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise invalid("query.cursor", "not a cursor", "query.cursor: not a cursor of this list")
    return values


# --- spaces -----------------------------------------------------------------------------

SPACE_COLUMNS = """
    s.space_id, s.site_id, s.name, s.code, s.time_zone, s.archived, s.archive_reason,
    s.config::text AS config, s.override_state, s.override_reason, s.override_until,
    s.sensor_dev_eui, s.sensor_decoder, s.display_dev_eui,
    st.state, st.since, st.layer, st.summary, st.explanation::text AS explanation,
    st.reservation_id,
    st.next_change_at, st.next_change_reason, st.next_state,
    st.desired_frame, st.desired_for_state, st.desired_command_id, st.desired_attempt,
    st.desired_at, st.confirmed_frame, st.confirmed_command_id, st.confirmed_evidence,
    st.confirmed_at
"""
SPACES_FROM = """
    FROM spaces s LEFT JOIN space_states st
      ON st.tenant_id = s.tenant_id AND st.space_id = s.space_id
    WHERE s.tenant_id = $1 AND s.registered_at IS NOT NULL
"""


def space_dict(r: Any) -> dict[str, Any]:
    """A bay as :class:`models.SpaceOut` describes it, as plain JSON types.

    The read paths write this dict straight with orjson (JSON columns pass through as
    fragments); the tests hold the output to the model.
    """
    desired = (
        {
            "frame_hex": r["desired_frame"],
            "command_id": r["desired_command_id"],
            "for_state": r["desired_for_state"],
            "attempt": r["desired_attempt"],
            "evidence": None,
            "at": r["desired_at"],
        }
        if r["desired_frame"] is not None
        else None
    )
    confirmed = (
        {
            "frame_hex": r["confirmed_frame"],
            "command_id": r["confirmed_command_id"],
            "for_state": None,
            "attempt": None,
            "evidence": r["confirmed_evidence"],
            "at": r["confirmed_at"],
        }
        if r["confirmed_frame"] is not None
        else None
    )
    display = None
    if r["display_dev_eui"] is not None or desired is not None:
        display = {
            "dev_eui": r["display_dev_eui"],
            "desired": desired,
            "confirmed": confirmed,
            "in_sync": desired is not None
            and confirmed is not None
            and desired["frame_hex"] == confirmed["frame_hex"],
        }
    return {
        "space_id": r["space_id"],
        "site_id": r["site_id"],
        "name": r["name"],
        "code": r["code"],
        "time_zone": r["time_zone"],
        "archived": r["archived"],
        "archive_reason": r["archive_reason"],
        "state": r["state"],
        "since": r["since"],
        "layer": r["layer"],
        "summary": r["summary"],
        "explanation": _raw_json(r["explanation"]),
        "reservation_id": r["reservation_id"],
        "next_change": {
            "at": r["next_change_at"],
            "reason": r["next_change_reason"],
            "to_state": r["next_state"],
        }
        if r["next_change_at"] is not None
        else None,
        "override": {
            "state": r["override_state"],
            "reason": r["override_reason"],
            "until": r["override_until"],
        }
        if r["override_state"] is not None
        else None,
        "sensor": {"dev_eui": r["sensor_dev_eui"], "decoder": r["sensor_decoder"]}
        if r["sensor_dev_eui"] is not None
        else None,
        "display": display,
        "config": _raw_json(r["config"]),
    }


def _raw_json(text: str | None) -> Any:
    # JSON columns are read as text and written as they are: no decode and encode again.
    return orjson.Fragment(text) if text is not None else None


def json_response(body: Any, status: int = 200) -> Response:
    """Pre-serialised JSON (orjson, UTC as ``Z``), skipping a second validation pass."""
    return Response(
        orjson.dumps(body, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC),
        status_code=status,
        media_type="application/json",
    )


async def list_spaces(
    db: Any,
    tenant: str,
    *,
    site_id: str | None,
    states: list[str] | None,
    archived: bool | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A page (as ``models.Page[SpaceOut]`` describes it) in (site, code, id) order.

    The page is chosen on the registry's index first, then joined with the states, so a
    page costs the same at any tenant size."""
    after = decode_cursor(cursor, 3)
    args: list[Any] = [tenant]
    where = []
    if site_id is not None:
        args.append(site_id)
        where.append(f"s.site_id = ${len(args)}")
    if states:
        args.append(states)
        where.append(
            "EXISTS (SELECT 1 FROM space_states f WHERE f.tenant_id = s.tenant_id "
            f"AND f.space_id = s.space_id AND f.state = ANY(${len(args)}::text[]))"
        )
    if archived is not None:
        args.append(archived)
        where.append(f"s.archived = ${len(args)}")
    if after is not None:
        args.extend(str(v) for v in after)
        n = len(args)
        where.append(f"(s.site_id, s.code, s.space_id) > (${n - 2}, ${n - 1}, ${n})")
    args.append(limit + 1)
    sql = (
        "WITH page AS (SELECT * FROM spaces s WHERE s.tenant_id = $1 "
        "AND s.registered_at IS NOT NULL"
        + "".join(f" AND {w}" for w in where)
        + f" ORDER BY s.site_id, s.code, s.space_id LIMIT ${len(args)}) "
        + f"SELECT {SPACE_COLUMNS} FROM page s LEFT JOIN space_states st "
        "ON st.tenant_id = s.tenant_id AND st.space_id = s.space_id "
        "ORDER BY s.site_id, s.code, s.space_id"
    )
    rows = await db.fetch(sql, *args)
    items = [space_dict(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last["site_id"], last["code"], last["space_id"]])
    return {"items": items, "next_cursor": next_cursor}


async def space_row(db: Any, tenant: str, space_id: str) -> Any:
    row = await db.fetchrow(
        f"SELECT {SPACE_COLUMNS} {SPACES_FROM} AND s.space_id = $2", tenant, space_id
    )
    if row is None:
        raise ApiProblem(404, "not-found", f"no space {space_id!r} in this tenant")
    return row


async def require_space(db: Any, tenant: str, space_id: str) -> Any:
    """The bay's registry row, or 404 (also for another tenant's bay: nothing leaks).

    A bay the API registered moments ago may not be projected yet: its claimed code
    counts as existence.
    """
    row = await db.fetchrow(
        "SELECT s.space_id, s.site_id, s.archived, s.time_zone FROM spaces s "
        "WHERE s.tenant_id = $1 AND s.space_id = $2 AND s.registered_at IS NOT NULL",
        tenant,
        space_id,
    )
    if row is not None:
        return row
    claimed = await db.fetchrow(
        "SELECT space_id, site_id, false AS archived, NULL::text AS time_zone "
        "FROM space_codes WHERE tenant_id = $1 AND space_id = $2",
        tenant,
        space_id,
    )
    if claimed is None:
        raise ApiProblem(404, "not-found", f"no space {space_id!r} in this tenant")
    return claimed


# --- sites ------------------------------------------------------------------------------


SITES_SQL = """
    WITH counts AS (
        SELECT site_id, count(*) AS spaces, min(time_zone) AS time_zone FROM spaces
        WHERE tenant_id = $1 AND registered_at IS NOT NULL AND site_id IS NOT NULL
        GROUP BY site_id
    )
    SELECT coalesce(t.site_id, c.site_id) AS site_id,
           coalesce(t.name, c.site_id) AS name,
           coalesce(t.time_zone, c.time_zone, 'UTC') AS time_zone,
           coalesce(c.spaces, 0) AS spaces,
           t.created_at
    FROM (SELECT * FROM tenant_sites WHERE tenant_id = $1) t
    FULL JOIN counts c ON c.site_id = t.site_id
"""


def site_out(r: Any) -> m.SiteOut:
    return m.SiteOut(
        site_id=r["site_id"],
        name=r["name"],
        time_zone=r["time_zone"],
        spaces=r["spaces"],
        created_at=r["created_at"],
    )


async def list_sites(db: Any, tenant: str) -> list[m.SiteOut]:
    rows = await db.fetch(SITES_SQL + " ORDER BY 1", tenant)
    return [site_out(r) for r in rows]


async def get_site(db: Any, tenant: str, site_id: str) -> m.SiteOut:
    row = await db.fetchrow(f"SELECT * FROM ({SITES_SQL}) x WHERE site_id = $2", tenant, site_id)
    if row is None:
        raise ApiProblem(404, "not-found", f"no site {site_id!r} in this tenant")
    return site_out(row)


# --- reservations -----------------------------------------------------------------------

RESERVATION_COLUMNS = """
    reservation_id, space_id, status, starts_at, ends_at, grace_s, kind, external_ref,
    confirmed_at, arrived_at, no_show_at, completed_at, cancelled_at, cancel_reason
"""


def reservation_out(r: Any) -> m.ReservationOut:
    return m.ReservationOut(**{k: r[k] for k in m.ReservationOut.model_fields})


async def get_reservation(db: Any, tenant: str, reservation_id: str) -> m.ReservationOut | None:
    row = await db.fetchrow(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations "
        "WHERE tenant_id = $1 AND reservation_id = $2 AND confirmed_at IS NOT NULL",
        tenant,
        reservation_id,
    )
    return reservation_out(row) if row is not None else None


async def reservation_outcome(
    db: Any, tenant: str, request_id: str, reservation_id: str
) -> m.ReservationRequestOut:
    """What the fold decided about a request, as far as the read model knows."""
    confirmed = await db.fetchrow(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE tenant_id = $1 "
        "AND reservation_id = $2 AND request_id = $3 AND confirmed_at IS NOT NULL",
        tenant,
        reservation_id,
        request_id,
    )
    if confirmed is not None:
        return m.ReservationRequestOut(
            request_id=request_id, status="confirmed", reservation=reservation_out(confirmed)
        )
    rejected = await db.fetchrow(
        "SELECT reason, conflicting_reservation_id FROM reservation_rejections "
        "WHERE tenant_id = $1 AND request_id = $2 ORDER BY rejected_at LIMIT 1",
        tenant,
        request_id,
    )
    if rejected is not None:
        return m.ReservationRequestOut(
            request_id=request_id,
            status="rejected",
            reason=rejected["reason"],
            conflicting_reservation_id=rejected["conflicting_reservation_id"],
        )
    return m.ReservationRequestOut(request_id=request_id, status="pending")


async def list_reservations(
    db: Any,
    tenant: str,
    *,
    space_id: str | None,
    status: list[str] | None,
    starts_from: datetime | None,
    starts_to: datetime | None,
    limit: int,
    cursor: str | None,
) -> m.Page[m.ReservationOut]:
    after = decode_cursor(cursor, 2)
    args: list[Any] = [tenant]
    where = ["confirmed_at IS NOT NULL"]
    if space_id is not None:
        args.append(space_id)
        where.append(f"space_id = ${len(args)}")
    if status:
        args.append(status)
        where.append(f"status = ANY(${len(args)}::text[])")
    if starts_from is not None:
        args.append(starts_from)
        where.append(f"ends_at > ${len(args)}")
    if starts_to is not None:
        args.append(starts_to)
        where.append(f"starts_at < ${len(args)}")
    if after is not None:
        try:
            at = datetime.fromisoformat(str(after[0]))
        except ValueError:
            raise ApiProblem(422, "invalid-request", "query.cursor: not a cursor") from None
        args.extend([at, str(after[1])])
        n = len(args)
        where.append(f"(starts_at, reservation_id) > (${n - 1}, ${n})")
    args.append(limit + 1)
    rows = await db.fetch(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE tenant_id = $1 AND "
        + " AND ".join(where)
        + f" ORDER BY starts_at, reservation_id LIMIT ${len(args)}",
        *args,
    )
    items = [reservation_out(r) for r in rows[:limit]]
    nxt = None
    if len(rows) > limit:
        last = rows[limit - 1]
        nxt = encode_cursor([last["starts_at"], last["reservation_id"]])
    return m.Page[m.ReservationOut](items=items, next_cursor=nxt)
