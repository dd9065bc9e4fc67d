"""Access to the demo lot through the API: its tenant and a fresh admin key."""

from __future__ import annotations

import http.client
import socket

from parkstream.dev.seed import DEMO_TENANT


async def demo_key(database_url: str, tenant: str = DEMO_TENANT) -> str:
    """Register the demo tenant (if missing) and return a new admin key of it.

    The key is stored as a hash only; the caller prints it, once.
    """
    import asyncpg

    from parkstream.api.keys import create_key, ensure_tenant

    conn = await asyncpg.connect(database_url)
    try:
        await ensure_tenant(conn, tenant, "Demo lot")
        key = await create_key(conn, tenant, ["admin"], name="parkstream dev")
    finally:
        await conn.close()
    return key.token


def loopback_port(preferred: int) -> int:
    """``preferred`` if nothing listens on it at 127.0.0.1, else a free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def answers(port: int, path: str = "/healthz") -> bool:
    """Whether an HTTP server on 127.0.0.1:``port`` answers ``path`` with 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
