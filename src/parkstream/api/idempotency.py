"""``Idempotency-Key``: a retried create returns what the first request created.

The key is remembered per tenant with the route and a hash of the body; the same key
with another route or body is refused (422), since it cannot be what the client meant.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Any

import orjson
from fastapi import Header

from parkstream.api.problems import invalid

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Makes the request safe to retry: the same key gives the same result.",
    ),
]


def body_hash(body: Any) -> bytes:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).digest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


async def claim(
    db: Any, tenant: str, key: str | None, route: str, body: Any, resource_id: str
) -> tuple[str, bool]:
    """``(resource_id, first)``: the id of this key's resource, and whether this call made it."""
    if key is None:
        return resource_id, True
    digest = body_hash(body)
    made = await db.fetchval(
        "INSERT INTO idempotency_keys (tenant_id, key, route, request_hash, resource_id) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING true",
        tenant,
        key,
        route,
        digest,
        resource_id,
    )
    if made:
        return resource_id, True
    row = await db.fetchrow(
        "SELECT route, request_hash, resource_id FROM idempotency_keys "
        "WHERE tenant_id = $1 AND key = $2",
        tenant,
        key,
    )
    if row["route"] != route or bytes(row["request_hash"]) != digest:
        raise invalid(
            "header.Idempotency-Key",
            "reused",
            "this Idempotency-Key was used for a different request",
        )
    return str(row["resource_id"]), False
