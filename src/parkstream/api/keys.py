"""Tenants and API keys: creation, parsing, hashing, revocation.

A key reads ``psk_<key_id>_<secret>``: ``key_id`` (12 hex digits) finds its row, and
only the SHA-256 of the 256-bit random ``secret`` is stored, so a stolen table yields no
usable key. The full key is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
PREFIX = "psk_"
_KEY = re.compile(r"^psk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class KeyStoreError(ValueError):
    """A key or tenant request the store refuses; the message says why."""


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str

    @property
    def token(self) -> str:
        return f"{PREFIX}{self.key_id}_{self.secret}"


def generate() -> NewKey:
    return NewKey(secrets.token_hex(6), secrets.token_urlsafe(32))


def parse(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    match = _KEY.match(token)
    return (match[1], match[2]) if match else None


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def matches(secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(digest(secret), stored)


def check_scopes(scopes: Iterable[str]) -> list[Scope]:
    chosen: list[Scope] = []
    for s in scopes:
        if s not in SCOPES:
            raise KeyStoreError(f"unknown scope {s!r}; choose from {', '.join(SCOPES)}")
        if s not in chosen:
            chosen.append(s)
    if not chosen:
        raise KeyStoreError("a key needs at least one scope")
    return chosen


def check_tenant_id(tenant_id: str) -> str:
    if not _TENANT_ID.match(tenant_id):
        raise KeyStoreError(
            f"tenant id {tenant_id!r}: 1-63 lower-case letters, digits and '-', "
            "starting with a letter or digit"
        )
    return tenant_id


async def create_tenant(
    conn: Any, tenant_id: str, name: str, applications: Sequence[str] = ()
) -> None:
    check_tenant_id(tenant_id)
    done = await conn.execute(
        "INSERT INTO tenants (tenant_id, name, chirpstack_applications) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant_id) DO NOTHING",
        tenant_id,
        name or tenant_id,
        list(applications),
    )
    if done.endswith(" 0"):
        raise KeyStoreError(f"tenant {tenant_id!r} exists already")


async def ensure_tenant(
    conn: Any, tenant_id: str, name: str, applications: Sequence[str] = ()
) -> None:
    """Create the tenant if it is missing (for seeding); an existing one is kept as it is."""
    check_tenant_id(tenant_id)
    await conn.execute(
        "INSERT INTO tenants (tenant_id, name, chirpstack_applications) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant_id) DO NOTHING",
        tenant_id,
        name or tenant_id,
        list(applications),
    )


async def create_key(
    conn: Any,
    tenant_id: str,
    scopes: Iterable[str],
    *,
    name: str = "",
    expires_in: timedelta | None = None,
    now: datetime | None = None,
) -> NewKey:
    chosen = check_scopes(scopes)
    if await conn.fetchval("SELECT 1 FROM tenants WHERE tenant_id = $1", tenant_id) is None:
        raise KeyStoreError(f"no tenant {tenant_id!r}")
    key = generate()
    expires_at = None
    if expires_in is not None:
        if expires_in.total_seconds() <= 0:
            raise KeyStoreError("an expiry must lie in the future")
        expires_at = (now or await conn.fetchval("SELECT now()")) + expires_in
    await conn.execute(
        "INSERT INTO api_keys (key_id, tenant_id, name, secret_sha256, scopes, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        key.key_id,
        tenant_id,
        name,
        digest(key.secret),
        chosen,
        expires_at,
    )
    return key


async def revoke_key(conn: Any, key_id: str) -> bool:
    done: str = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL", key_id
    )
    return not done.endswith(" 0")


async def list_keys(conn: Any, tenant_id: str | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT key_id, tenant_id, name, scopes, created_at, expires_at, revoked_at, "
        "last_used_at FROM api_keys WHERE $1::text IS NULL OR tenant_id = $1 "
        "ORDER BY tenant_id, created_at",
        tenant_id,
    )
    return [dict(r) for r in rows]
