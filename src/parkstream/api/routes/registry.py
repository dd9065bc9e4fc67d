"""Sites, bays, device assignment, orphan devices, overrides and the display policy.

Writes to a bay are commands: each answers 202 with the command's id once the broker
has it, and the fold applies it (or records why not) moments later.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Path, Response

from parkstream.api import models as m
from parkstream.api import store
from parkstream.api.context import (
    ApiContext,
    Principal,
    RequireAdmin,
    RequireRead,
    RequireWrite,
    get_context,
)
from parkstream.api.idempotency import IdempotencyKey, claim, new_id
from parkstream.api.problems import ApiProblem, responses
from parkstream.domain import commands as cmd
from parkstream.domain.display import DisplayPolicy

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_context)]
SpaceId = Annotated[str, Path(pattern=m.ID_PATTERN)]
SiteId = Annotated[str, Path(pattern=m.ID_PATTERN)]
DevEui = Annotated[
    str, Path(pattern=r"^[0-9A-Fa-f:-]{16,23}$", description="16 hex digits, any case.")
]
Role = Annotated[str, Path(pattern="^(sensor|display)$", description="sensor or display")]
WRITE_ERRORS = responses(401, 403, 404, 409, 422, 429)
READ_ERRORS = responses(401, 403, 404, 422, 429)


async def _to_bay(
    ctx: ApiContext,
    response: Response,
    tenant: str,
    space_id: str,
    cls: type[Any],
    data: Any,
) -> m.Accepted:
    """Send one command to one of the tenant's bays (404 for any other bay): 202."""
    await store.require_space(ctx.pool, tenant, space_id)
    command = ctx.commands.build(cls, tenant, space_id, data)
    await ctx.commands.send(command)
    return _accepted(response, command, space_id)


def _accepted(response: Response, command: Any, space_id: str) -> m.Accepted:
    location = f"/v1/spaces/{space_id}"
    response.headers["Location"] = location
    return m.Accepted(command_id=command.event_id, space_id=space_id, location=location)


# --- sites ------------------------------------------------------------------------------


@router.post(
    "/v1/sites",
    tags=["sites"],
    status_code=201,
    response_model=m.SiteOut,
    summary="Create a site",
    responses=WRITE_ERRORS,
)
async def create_site(
    body: m.SiteIn, response: Response, ctx: Ctx, p: Principal = RequireAdmin
) -> m.SiteOut:
    made = await ctx.pool.fetchval(
        "INSERT INTO tenant_sites (tenant_id, site_id, name, time_zone) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING true",
        p.tenant_id,
        body.site_id,
        body.name,
        body.time_zone,
    )
    if not made:
        raise ApiProblem(409, "conflict", f"site {body.site_id!r} exists already")
    response.headers["Location"] = f"/v1/sites/{body.site_id}"
    return await store.get_site(ctx.pool, p.tenant_id, body.site_id)


@router.get(
    "/v1/sites",
    tags=["sites"],
    response_model=list[m.SiteOut],
    summary="List sites",
    responses=READ_ERRORS,
)
async def list_sites(ctx: Ctx, p: Principal = RequireRead) -> list[m.SiteOut]:
    return await store.list_sites(ctx.pool, p.tenant_id)


@router.get(
    "/v1/sites/{site_id}",
    tags=["sites"],
    response_model=m.SiteOut,
    summary="One site",
    responses=READ_ERRORS,
)
async def get_site(site_id: SiteId, ctx: Ctx, p: Principal = RequireRead) -> m.SiteOut:
    return await store.get_site(ctx.pool, p.tenant_id, site_id)


# --- spaces -----------------------------------------------------------------------------


@router.post(
    "/v1/sites/{site_id}/spaces",
    tags=["spaces"],
    status_code=202,
    response_model=m.Accepted,
    summary="Register a bay at a site",
    responses=WRITE_ERRORS,
)
async def create_space(
    site_id: SiteId,
    body: m.SpaceIn,
    response: Response,
    ctx: Ctx,
    idempotency_key: IdempotencyKey = None,
    p: Principal = RequireAdmin,
) -> m.Accepted:
    site = await store.get_site(ctx.pool, p.tenant_id, site_id)
    route = f"POST /v1/sites/{site_id}/spaces"
    async with ctx.pool.acquire() as conn, conn.transaction():
        space_id, first = await claim(
            conn, p.tenant_id, idempotency_key, route, body.model_dump(mode="json"), new_id("spc")
        )
        if first:
            taken = await conn.fetchval(
                "INSERT INTO space_codes (tenant_id, site_id, code, space_id) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING space_id",
                p.tenant_id,
                site_id,
                body.code,
                space_id,
            )
            if taken is None:
                raise ApiProblem(
                    409, "conflict", f"code {body.code!r} is taken at site {site_id!r}"
                )
        register = ctx.commands.build(
            cmd.RegisterSpace,
            p.tenant_id,
            space_id,
            cmd.RegisterSpaceData(
                site_id=site_id,
                name=body.name,
                code=body.code,
                config=body.config,
                time_zone=site.time_zone,
            ),
            request_key=idempotency_key or space_id,
        )
        commands = [register]
        policy = await conn.fetchval(
            "SELECT display_policy FROM tenants WHERE tenant_id = $1", p.tenant_id
        )
        if policy is not None:
            commands.append(
                ctx.commands.build(
                    cmd.SetDisplayPolicy,
                    p.tenant_id,
                    space_id,
                    cmd.SetDisplayPolicyData(policy=DisplayPolicy.model_validate(policy)),
                    request_key=(idempotency_key or space_id) + ":policy",
                )
            )
        await ctx.commands.send(*commands)
    return _accepted(response, register, space_id)


@router.patch(
    "/v1/spaces/{space_id}",
    tags=["spaces"],
    status_code=202,
    response_model=m.Accepted,
    summary="Rename a bay, change its code or its tuning",
    responses=WRITE_ERRORS,
)
async def update_space(
    space_id: SpaceId,
    body: m.SpacePatch,
    response: Response,
    ctx: Ctx,
    p: Principal = RequireAdmin,
) -> m.Accepted:
    space = await store.require_space(ctx.pool, p.tenant_id, space_id)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if body.code is not None:
            try:
                await conn.execute(
                    "INSERT INTO space_codes (tenant_id, site_id, code, space_id) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, space_id) "
                    "DO UPDATE SET code = EXCLUDED.code",
                    p.tenant_id,
                    space["site_id"],
                    body.code,
                    space_id,
                )
            except asyncpg.UniqueViolationError:
                raise ApiProblem(
                    409, "conflict", f"code {body.code!r} is taken at site {space['site_id']!r}"
                ) from None
        command = ctx.commands.build(
            cmd.UpdateSpace,
            p.tenant_id,
            space_id,
            cmd.UpdateSpaceData(name=body.name, code=body.code, config=body.config),
        )
        await ctx.commands.send(command)
    return _accepted(response, command, space_id)


@router.post(
    "/v1/spaces/{space_id}/archive",
    tags=["spaces"],
    status_code=202,
    response_model=m.Accepted,
    summary="Archive a bay (it keeps its history)",
    responses=WRITE_ERRORS,
)
async def archive_space(
    space_id: SpaceId,
    body: m.ArchiveIn,
    response: Response,
    ctx: Ctx,
    p: Principal = RequireAdmin,
) -> m.Accepted:
    return await _to_bay(
        ctx,
        response,
        p.tenant_id,
        space_id,
        cmd.ArchiveSpace,
        cmd.ArchiveSpaceData(reason=body.reason, force=body.force),
    )


@router.post(
    "/v1/spaces/{space_id}/restore",
    tags=["spaces"],
    status_code=202,
    response_model=m.Accepted,
    summary="Restore an archived bay",
    responses=WRITE_ERRORS,
)
async def restore_space(
    space_id: SpaceId,
    body: m.RestoreIn,
    response: Response,
    ctx: Ctx,
    p: Principal = RequireAdmin,
) -> m.Accepted:
    await store.require_space(ctx.pool, p.tenant_id, space_id)
    command = ctx.commands.build(
        cmd.RestoreSpace, p.tenant_id, space_id, cmd.RestoreSpaceData(reason=body.reason)
    )
    await ctx.commands.send(command)
    return _accepted(response, command, space_id)


async def _assign(
    ctx: ApiContext, tenant: str, space_id: str, role: str, dev_eui: str, decoder: str | None
) -> Any:
    await store.require_space(ctx.pool, tenant, space_id)
    elsewhere = await ctx.pool.fetchval(
        "SELECT 1 FROM devices WHERE dev_eui = $1 AND assigned AND tenant_id <> $2", dev_eui, tenant
    )
    if elsewhere:
        raise ApiProblem(409, "conflict", f"device {dev_eui} is assigned outside this tenant")
    command = ctx.commands.build(
        cmd.AssignDevice,
        tenant,
        space_id,
        cmd.AssignDeviceData(dev_eui=dev_eui, role=role, decoder=decoder),
    )
    await ctx.commands.send(command)
    return command


@router.put(
    "/v1/spaces/{space_id}/devices/{role}",
    tags=["spaces"],
    status_code=202,
    response_model=m.Accepted,
    summary="Assign the bay's sensor or display",
    responses=WRITE_ERRORS,
)
async def assign_device(
    space_id: SpaceId,
    role: Role,
    body: m.DeviceIn,
    response: Response,
    ctx: Ctx,
    p: Principal = RequireAdmin,
) -> m.Accepted:
    command = await _assign(ctx, p.tenant_id, space_id, role, body.dev_eui, body.decoder)
    return _accepted(response, command, space_id)


@router.delete(
    "/v1/spaces/{space_id}/devices/{role}",
    tags=["spaces"],
    status_code=202,
    response_model=m.Accepted,
    summary="Unassign the bay's sensor or display",
    responses=WRITE_ERRORS,
)
async def unassign_device(
    space_id: SpaceId, role: Role, response: Response, ctx: Ctx, p: Principal = RequireAdmin
) -> m.Accepted:
    return await _to_bay(
        ctx,
        response,
        p.tenant_id,
        space_id,
        cmd.UnassignDevice,
        cmd.UnassignDeviceData(
            role=role,
        ),
    )


# --- overrides --------------------------------------------------------------------------


@router.put(
    "/v1/spaces/{space_id}/override",
    tags=["overrides"],
    status_code=202,
    response_model=m.Accepted,
    summary="Force a state, optionally until a time",
    responses=WRITE_ERRORS,
)
async def set_override(
    space_id: SpaceId,
    body: m.OverrideIn,
    response: Response,
    ctx: Ctx,
    p: Principal = RequireWrite,
) -> m.Accepted:
    return await _to_bay(
        ctx,
        response,
        p.tenant_id,
        space_id,
        cmd.SetOverride,
        cmd.SetOverrideData(state=body.state, reason=body.reason, until=body.until),
    )


@router.delete(
    "/v1/spaces/{space_id}/override",
    tags=["overrides"],
    status_code=202,
    response_model=m.Accepted,
    summary="End the override",
    responses=WRITE_ERRORS,
)
async def clear_override(
    space_id: SpaceId, response: Response, ctx: Ctx, p: Principal = RequireWrite
) -> m.Accepted:
    return await _to_bay(
        ctx,
        response,
        p.tenant_id,
        space_id,
        cmd.ClearOverride,
        cmd.ClearOverrideData(),
    )


# --- display policy ---------------------------------------------------------------------


@router.get(
    "/v1/display-policy",
    tags=["spaces"],
    response_model=m.PolicyOut,
    summary="The tenant's display policy (state -> light style)",
    responses=READ_ERRORS,
)
async def get_policy(ctx: Ctx, p: Principal = RequireRead) -> m.PolicyOut:
    policy = await ctx.pool.fetchval(
        "SELECT display_policy FROM tenants WHERE tenant_id = $1", p.tenant_id
    )
    if policy is None:
        return m.PolicyOut(policy=DisplayPolicy().model_dump(mode="json"), source="default")
    return m.PolicyOut(
        policy=DisplayPolicy.model_validate(policy).model_dump(mode="json"), source="tenant"
    )


@router.put(
    "/v1/display-policy",
    tags=["spaces"],
    status_code=202,
    response_model=m.AcceptedMany,
    summary="Set the display policy of every bay of the tenant",
    responses=WRITE_ERRORS,
)
async def set_policy(body: m.PolicyIn, ctx: Ctx, p: Principal = RequireAdmin) -> m.AcceptedMany:
    policy = DisplayPolicy(version=body.version, styles=body.styles)
    spaces = await ctx.pool.fetch(
        "SELECT space_id FROM spaces WHERE tenant_id = $1 AND registered_at IS NOT NULL "
        "UNION SELECT space_id FROM space_codes WHERE tenant_id = $1",
        p.tenant_id,
    )
    await ctx.pool.execute(
        "UPDATE tenants SET display_policy = $2 WHERE tenant_id = $1",
        p.tenant_id,
        body.model_dump(mode="json"),
    )
    commands = [
        ctx.commands.build(
            cmd.SetDisplayPolicy,
            p.tenant_id,
            r["space_id"],
            cmd.SetDisplayPolicyData(policy=policy),
        )
        for r in spaces
    ]
    await ctx.commands.send(*commands)
    return m.AcceptedMany(commands=len(commands))


# --- orphan devices ---------------------------------------------------------------------

ORPHANS = """
    SELECT o.dev_eui, o.first_seen_at, o.last_seen_at, o.device_profile_name,
           o.application_id, o.device_name
    FROM orphan_devices o JOIN tenants t ON t.tenant_id = $1
    WHERE o.application_id = ANY(t.chirpstack_applications)
      AND NOT EXISTS (
          SELECT 1 FROM orphan_dismissals d
          WHERE d.tenant_id = $1 AND d.dev_eui = o.dev_eui AND d.dismissed_at >= o.last_seen_at)
      AND NOT EXISTS (SELECT 1 FROM devices v WHERE v.dev_eui = o.dev_eui AND v.assigned)
"""


@router.get(
    "/v1/orphan-devices",
    tags=["devices"],
    response_model=list[m.OrphanOut],
    summary="Devices of the tenant's ChirpStack applications that belong to no bay",
    responses=READ_ERRORS,
)
async def list_orphans(ctx: Ctx, p: Principal = RequireRead) -> list[m.OrphanOut]:
    rows = await ctx.pool.fetch(ORPHANS + " ORDER BY o.last_seen_at DESC LIMIT 1000", p.tenant_id)
    return [m.OrphanOut(**dict(r)) for r in rows]


async def _orphan(ctx: ApiContext, tenant: str, dev_eui: str) -> str:
    try:
        eui = m.DeviceIn(dev_eui=dev_eui).dev_eui
    except ValueError:
        raise ApiProblem(404, "not-found", f"no orphan device {dev_eui!r} in this tenant") from None
    if await ctx.pool.fetchrow(ORPHANS + " AND o.dev_eui = $2", tenant, eui) is None:
        raise ApiProblem(404, "not-found", f"no orphan device {dev_eui!r} in this tenant")
    return eui


@router.post(
    "/v1/orphan-devices/{dev_eui}/assign",
    tags=["devices"],
    status_code=202,
    response_model=m.Accepted,
    summary="Assign an orphan device to a bay",
    responses=WRITE_ERRORS,
)
async def assign_orphan(
    dev_eui: DevEui,
    body: m.OrphanAssignIn,
    response: Response,
    ctx: Ctx,
    p: Principal = RequireAdmin,
) -> m.Accepted:
    eui = await _orphan(ctx, p.tenant_id, dev_eui)
    command = await _assign(ctx, p.tenant_id, body.space_id, body.role, eui, body.decoder)
    return _accepted(response, command, body.space_id)


@router.post(
    "/v1/orphan-devices/{dev_eui}/dismiss",
    tags=["devices"],
    status_code=204,
    summary="Hide an orphan device until it is heard from again",
    responses=WRITE_ERRORS,
)
async def dismiss_orphan(dev_eui: DevEui, ctx: Ctx, p: Principal = RequireAdmin) -> Response:
    eui = await _orphan(ctx, p.tenant_id, dev_eui)
    await ctx.pool.execute(
        "INSERT INTO orphan_dismissals (tenant_id, dev_eui) VALUES ($1, $2) "
        "ON CONFLICT (tenant_id, dev_eui) DO UPDATE SET dismissed_at = now()",
        p.tenant_id,
        eui,
    )
    return Response(status_code=204)
