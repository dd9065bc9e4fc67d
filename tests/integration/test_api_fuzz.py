"""A property-based fuzzer (schemathesis) against the live API, from its OpenAPI document.

The API runs as its own process (``parkstream api``) with a real PostgreSQL and broker;
schemathesis generates requests for every operation, valid and invalid, and checks that
none is answered with a server error and that every answer matches the document.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from parkstream.api import keys
from parkstream.config import Settings
from parkstream.topics_admin import apply_topics
from tests.integration.test_projector_support import fresh_database

pytestmark = pytest.mark.integration

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _prepare(settings: Settings) -> tuple[str, str]:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        await keys.ensure_tenant(conn, "fuzz", "Fuzz", ("app-1",))
        key = await keys.create_key(conn, "fuzz", ["admin"])
        await conn.execute(
            "INSERT INTO tenant_sites (tenant_id, site_id, name, time_zone) "
            "VALUES ('fuzz', 'site-1', 'One', 'Europe/Berlin')"
        )
    finally:
        await conn.close()
    return key.token, settings.database_url.get_secret_value()


@contextlib.asynccontextmanager
async def live_api(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    await apply_topics(settings)
    async with fresh_database(settings) as db_settings:
        key, url = await _prepare(db_settings)
        port = _free_port()
        env = {
            **os.environ,
            "PARKSTREAM_PROFILE": "test",
            "PARKSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "PARKSTREAM_DATABASE_URL": url,
            "PARKSTREAM_TOPIC_PREFIX": settings.topic_prefix,
            "PARKSTREAM_API_RATE_READ_KEY": "1000000/minute",
            "PARKSTREAM_API_RATE_READ_TENANT": "1000000/minute",
            "PARKSTREAM_API_RATE_WRITE_KEY": "1000000/minute",
            "PARKSTREAM_API_RATE_WRITE_TENANT": "1000000/minute",
            # No worker runs here: reservations answer 202 after this wait.
            "PARKSTREAM_API_COMMAND_WAIT_S": "0.2",
            "PARKSTREAM_LOG_FORMAT": "json",
        }
        log_path = tmp_path / "api.log"
        with log_path.open("wb") as log:
            api = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited here
                [sys.executable, "-m", "parkstream", "api", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            async with httpx.AsyncClient() as client:
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(base + "/readyz", timeout=2)).status_code == 200:
                            break
                    if api.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(log_path.read_text())
                    await asyncio.sleep(0.2)
            yield base, key
        finally:
            api.terminate()
            code = await asyncio.to_thread(api.wait, 30)
        text = log_path.read_text()
        assert code == 0, text[-3000:]
        assert '"request failed"' not in text, text[-3000:]


async def test_the_fuzzer_finds_no_server_error(settings: Settings, tmp_path: Path) -> None:
    async with live_api(settings, tmp_path) as (base, key):
        run = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{base}/openapi.json",
            "--header",
            f"X-API-Key: {key}",
            "--checks",
            CHECKS,
            "--max-examples",
            "30",
            "--seed",
            "20261125",
            "--request-timeout",
            "10",
            "--report-dir",
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,  # schemathesis keeps its example database in the working directory
        )
        out, _ = await asyncio.wait_for(run.communicate(), 900)
        output = out.decode(errors="replace")
        (tmp_path / "schemathesis.txt").write_text(output)
        assert run.returncode == 0, output[-6000:]
