"""``parkstream tenant`` and ``parkstream apikey`` as an operator runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from parkstream.api import keys
from parkstream.config import Settings
from tests.integration.test_projector_support import fresh_database

pytestmark = pytest.mark.integration


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARKSTREAM_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "parkstream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_tenants_and_keys_from_the_command_line(settings: Settings) -> None:
    async with fresh_database(settings) as db:
        url = db.database_url.get_secret_value()

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return _cli(url, *args)

        made = await asyncio.to_thread(
            cli,
            "tenant",
            "create",
            "acme",
            "--name",
            "Acme Parking",
            "--chirpstack-application",
            "app-7",
        )
        assert made.returncode == 0, made.stderr
        again = await asyncio.to_thread(cli, "tenant", "create", "acme")
        assert again.returncode == 1
        assert "exists already" in again.stderr
        listed = await asyncio.to_thread(cli, "tenant", "list")
        assert "acme\tAcme Parking\tapplications=app-7" in listed.stdout

        bad = await asyncio.to_thread(
            cli, "apikey", "create", "--tenant", "acme", "--scopes", "root"
        )
        assert bad.returncode == 1
        assert "unknown scope" in bad.stderr
        nobody = await asyncio.to_thread(cli, "apikey", "create", "--tenant", "nobody")
        assert nobody.returncode == 1

        created = await asyncio.to_thread(
            cli,
            "apikey",
            "create",
            "--tenant",
            "acme",
            "--scopes",
            "read,write",
            "--name",
            "booking system",
            "--expires-in-days",
            "30",
        )
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        parsed = keys.parse(token)
        assert parsed is not None
        key_id, secret = parsed
        assert "shown once" in created.stderr

        listing = await asyncio.to_thread(cli, "apikey", "list", "--tenant", "acme")
        assert key_id in listing.stdout
        assert "read,write\tactive" in listing.stdout
        assert secret not in listing.stdout

        conn = await asyncpg.connect(url)
        try:
            row = await conn.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key_id)
            assert keys.matches(secret, bytes(row["secret_sha256"]))
            assert secret.encode() not in bytes(row["secret_sha256"])
            assert row["expires_at"] is not None
        finally:
            await conn.close()

        revoked = await asyncio.to_thread(cli, "apikey", "revoke", key_id)
        assert revoked.returncode == 0
        assert "revoked" in (await asyncio.to_thread(cli, "apikey", "list")).stdout
        twice = await asyncio.to_thread(cli, "apikey", "revoke", key_id)
        assert twice.returncode == 1
