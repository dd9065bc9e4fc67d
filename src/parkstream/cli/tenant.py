"""``parkstream tenant`` and ``parkstream apikey``: the API's tenants and their keys."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from parkstream.config import load_settings


def register(sub: Any) -> None:
    t: argparse.ArgumentParser = sub.add_parser("tenant", help="create and list API tenants")
    tsub = t.add_subparsers(dest="tenant_command", required=True)
    create = tsub.add_parser("create", help="create a tenant")
    create.add_argument("tenant_id", help="id: lower-case letters, digits, '-'")
    create.add_argument("--name", default="", help="display name (default: the id)")
    create.add_argument(
        "--chirpstack-application",
        action="append",
        default=[],
        metavar="ID",
        help="a ChirpStack application whose unassigned devices this tenant may claim (repeatable)",
    )
    create.set_defaults(handler=_handler(_tenant_create))
    tlist = tsub.add_parser("list", help="list tenants")
    tlist.set_defaults(handler=_handler(_tenant_list))

    k: argparse.ArgumentParser = sub.add_parser("apikey", help="create, list and revoke API keys")
    ksub = k.add_subparsers(dest="apikey_command", required=True)
    kc = ksub.add_parser("create", help="create a key; it is printed once, store it now")
    kc.add_argument("--tenant", required=True)
    kc.add_argument(
        "--scopes", default="read", help="comma-separated: read, write, admin (default read)"
    )
    kc.add_argument("--name", default="", help="what the key is for")
    kc.add_argument("--expires-in-days", type=float, help="expire after this many days")
    kc.set_defaults(handler=_handler(_key_create))
    kl = ksub.add_parser("list", help="list keys (never their secrets)")
    kl.add_argument("--tenant")
    kl.set_defaults(handler=_handler(_key_list))
    kr = ksub.add_parser("revoke", help="revoke a key by its id")
    kr.add_argument("key_id")
    kr.set_defaults(handler=_handler(_key_revoke))


def _handler(
    body: Callable[[Any, argparse.Namespace], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        async def main() -> int:
            import asyncpg

            from parkstream.api.keys import KeyStoreError

            settings = load_settings()
            conn = await asyncpg.connect(settings.database_url.get_secret_value())
            try:
                return await body(conn, args)
            except KeyStoreError as exc:
                print(f"parkstream: {exc}", file=sys.stderr)
                return 1
            finally:
                await conn.close()

        return asyncio.run(main())

    return run


async def _tenant_create(conn: Any, args: argparse.Namespace) -> int:
    from parkstream.api.keys import create_tenant

    await create_tenant(conn, args.tenant_id, args.name, args.chirpstack_application)
    print(f"created tenant {args.tenant_id}")
    return 0


async def _tenant_list(conn: Any, args: argparse.Namespace) -> int:
    rows = await conn.fetch(
        "SELECT tenant_id, name, chirpstack_applications, created_at FROM tenants ORDER BY 1"
    )
    for r in rows:
        apps = ",".join(r["chirpstack_applications"]) or "-"
        print(f"{r['tenant_id']}\t{r['name']}\tapplications={apps}\t{r['created_at']:%Y-%m-%d}")
    return 0


async def _key_create(conn: Any, args: argparse.Namespace) -> int:
    from parkstream.api.keys import create_key

    expires = timedelta(days=args.expires_in_days) if args.expires_in_days else None
    key = await create_key(
        conn,
        args.tenant,
        [s.strip() for s in args.scopes.split(",") if s.strip()],
        name=args.name,
        expires_in=expires,
    )
    print(key.token)
    print(
        f"key id {key.key_id} for tenant {args.tenant}: shown once, only its hash is stored",
        file=sys.stderr,
    )
    return 0


async def _key_list(conn: Any, args: argparse.Namespace) -> int:
    from parkstream.api.keys import list_keys

    for k in await list_keys(conn, args.tenant):
        state = "revoked" if k["revoked_at"] else "active"
        print(
            f"{k['key_id']}\t{k['tenant_id']}\t{','.join(k['scopes'])}\t{state}\t"
            f"expires={k['expires_at'] or '-'}\tlast_used={k['last_used_at'] or '-'}\t{k['name']}"
        )
    return 0


async def _key_revoke(conn: Any, args: argparse.Namespace) -> int:
    from parkstream.api.keys import revoke_key

    if not await revoke_key(conn, args.key_id):
        print(f"parkstream: no active key {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0
