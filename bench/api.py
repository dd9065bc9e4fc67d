"""Latency of the query API at a fixed request rate, from a separate process.

Set-up: a fresh migrated database holding one tenant with 1,000 bays (registry rows and
current states with explanations, as the projector writes them) and an API key.

- API: ``parkstream api`` as its own process (rate limits raised out of the way), with
  every layer a request crosses in production: key check, rate limits, validation,
  response models, problem handlers, metrics middleware.
- Raw baseline, in the same run: a bare ASGI app under the same uvicorn that runs the
  very same SQL through asyncpg and writes the rows with orjson: no auth, no models.

A load process sends requests open-loop at a fixed rate (each at its scheduled time, so a
slow answer does not hold back the next request) and records each latency from the
scheduled send time. Targets: the space list (default page of 50) and one space (a
random bay per request).

The goal (issue "6 · The API"): p99 <= 25 ms at 200 requests/s on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import Result

NAME = "api"
LIMIT_P99_MS = 25.0
SPACES = 1000
TENANT = "bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per target")
    parser.add_argument("--spaces", type=int, default=SPACES, help="bays of the tenant")


# --- the load process ---------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _load(
    base: str, paths: list[str], key: str, rate: float, seconds: float
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, limits=limits, timeout=10
    ) as client:
        # Warm up: connections, statement caches, the key cache.
        for path in paths[:20]:
            await client.get(path)

        async def one(path: str, scheduled: float) -> None:
            nonlocal errors
            try:
                r = await client.get(path)
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)

        count = int(rate * seconds)
        # The load process must not pause itself: a latency counts from the scheduled send
        # time, so a collection here (one came about 13 s into every run, 50-150 ms long)
        # would be charged to the server. A few thousand requests fit in memory uncollected.
        gc.collect()
        gc.disable()
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(paths[i % len(paths)], scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        gc.enable()
    ms = [v * 1000 for v in latencies]
    return {
        "requests": count,
        "errors": errors,
        "achieved_rate": count / elapsed,
        "p50_ms": percentile(ms, 0.50),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms),
    }


def load_main() -> None:
    """Entry of the load process: argv = base, key, rate, seconds, paths file."""
    base, key, rate, seconds, paths_file = sys.argv[1:6]
    paths = Path(paths_file).read_text().split()
    result = asyncio.run(_load(base, paths, key, float(rate), float(seconds)))
    print(json.dumps(result))


def run_load(base: str, key: str, paths: list[str], rate: float, seconds: float, tmp: Path) -> Any:
    paths_file = tmp / f"paths-{random.randrange(1 << 30)}.txt"
    paths_file.write_text("\n".join(paths))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bench.api import load_main; load_main()",
            base,
            key,
            str(rate),
            str(seconds),
            str(paths_file),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=seconds * 10 + 120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the raw baseline server ---------------------------------------------------------------


def raw_main() -> None:
    """A bare ASGI app: the API's SQL through asyncpg, rows written with orjson."""
    import asyncpg
    import orjson
    import uvicorn

    from parkstream.api.store import SPACE_COLUMNS, SPACES_FROM

    url, port = sys.argv[1], int(sys.argv[2])
    state: dict[str, Any] = {}
    # Constant fragments only; the tenant is a bind parameter.
    list_sql = (
        "WITH page AS (SELECT * FROM spaces s WHERE s.tenant_id = $1 "  # noqa: S608
        "AND s.registered_at IS NOT NULL ORDER BY s.site_id, s.code, s.space_id LIMIT 51) "
        f"SELECT {SPACE_COLUMNS} FROM page s LEFT JOIN space_states st "
        "ON st.tenant_id = s.tenant_id AND st.space_id = s.space_id "
        "ORDER BY s.site_id, s.code, s.space_id"
    )
    one_sql = f"SELECT {SPACE_COLUMNS} {SPACES_FROM} AND s.space_id = $2"

    async def init(conn: Any) -> None:
        await conn.set_type_codec(
            "jsonb",
            schema="pg_catalog",
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
        )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    state["pool"] = await asyncpg.create_pool(
                        url, min_size=2, max_size=10, init=init
                    )
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await state["pool"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope["path"]
        if path == "/v1/spaces":
            rows = await state["pool"].fetch(list_sql, TENANT)
            body = orjson.dumps({"items": [dict(r) for r in rows[:50]]})
        else:
            row = await state["pool"].fetchrow(one_sql, TENANT, path.rsplit("/", 1)[-1])
            body = orjson.dumps(dict(row) if row else None)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- set-up --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(url: str, spaces: int) -> tuple[str, list[str]]:
    import asyncpg

    from parkstream.api import keys

    conn = await asyncpg.connect(url)
    try:
        await keys.ensure_tenant(conn, TENANT, "Bench")
        key = await keys.create_key(conn, TENANT, ["read"])
        await conn.execute(
            """
            INSERT INTO spaces (tenant_id, space_id, site_id, time_zone, registered_at, name,
                                code, config, meta_at, sensor_dev_eui, display_dev_eui)
            SELECT $1, 'spc_' || lpad(i::text, 6, '0'), 'site-' || (i % 4), 'Europe/Amsterdam',
                   now(), 'Bay ' || i, 'B' || lpad(i::text, 4, '0'),
                   '{"heartbeat_s": 3600, "debounce_s": 0}'::jsonb, now(),
                   lpad(to_hex(i), 16, '0'), lpad(to_hex(i + 100000), 16, '0')
            FROM generate_series(1, $2) i
            """,
            TENANT,
            spaces,
        )
        await conn.execute(
            """
            INSERT INTO space_states (tenant_id, space_id, site_id, time_zone, state, since,
                event_id, layer, summary, explanation, next_change_at, next_change_reason,
                display_dev_eui, desired_frame, desired_for_state, desired_command_id,
                desired_attempt, desired_at, confirmed_frame, confirmed_command_id,
                confirmed_evidence, confirmed_at)
            SELECT $1, 'spc_' || lpad(i::text, 6, '0'), 'site-' || (i % 4), 'Europe/Amsterdam',
                   CASE WHEN i % 3 = 0 THEN 'OCCUPIED' ELSE 'FREE' END, now() - interval '1 hour',
                   md5(i::text), 'sensor', 'The sensor reports the bay since 08:12.',
                   jsonb_build_object('state', 'FREE', 'layer', 'sensor',
                       'summary', 'The sensor reports the bay since 08:12.',
                       'cause_event_ids', jsonb_build_array(md5(i::text), md5((i + 1)::text)),
                       'since', now() - interval '1 hour'),
                   now() + interval '1 hour', 'sensor_silent',
                   lpad(to_hex(i + 100000), 16, '0'), '0000ff00ff00', 'FREE', md5(i::text), 1,
                   now(), '0000ff00ff00', md5(i::text), 'txack', now()
            FROM generate_series(1, $2) i
            """,
            TENANT,
            spaces,
        )
        await conn.execute("ANALYZE")
        ids = [r["space_id"] for r in await conn.fetch("SELECT space_id FROM spaces")]
    finally:
        await conn.close()
    return key.token, ids


@contextlib.contextmanager
def server(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    import httpx

    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code in (200, 404):
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(30)


def run(args: argparse.Namespace) -> list[Result]:
    import tempfile

    from bench.projector import fresh_database, services
    from parkstream.topics_admin import apply_topics

    with services() as settings, tempfile.TemporaryDirectory() as tmpdir:
        asyncio.run(apply_topics(settings))
        return asyncio.run(_with_database(settings, args, Path(tmpdir), fresh_database))


async def _with_database(
    settings: Any, args: argparse.Namespace, tmp: Path, fresh: Any
) -> list[Result]:
    async with fresh(settings) as db:
        url = db.database_url.get_secret_value()
        key, ids = await seed(url, args.spaces)
        return await asyncio.to_thread(_measure, settings, url, key, ids, args, tmp)


def _measure(
    settings: Any, url: str, key: str, ids: list[str], args: argparse.Namespace, tmp: Path
) -> list[Result]:
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PARKSTREAM_PROFILE": "test",
        "PARKSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "PARKSTREAM_DATABASE_URL": url,
        "PARKSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "PARKSTREAM_LOG_LEVEL": "WARNING",
        "PARKSTREAM_API_RATE_READ_KEY": "10000000/minute",
        "PARKSTREAM_API_RATE_READ_TENANT": "10000000/minute",
        "PYTHONPATH": str(root),
    }
    rng = random.Random(7)
    one_paths = [f"/v1/spaces/{rng.choice(ids)}" for _ in range(2000)]
    targets = {"space list": ["/v1/spaces"], "one space": one_paths}
    figures: dict[tuple[str, str], dict[str, Any]] = {}
    api_port, raw_port = _free_port(), _free_port()
    api_argv = [sys.executable, "-m", "parkstream", "api", "--port", str(api_port)]
    raw_argv = [
        sys.executable,
        "-c",
        "from bench.api import raw_main; raw_main()",
        url,
        str(raw_port),
    ]
    for label, argv, port in (("raw", raw_argv, raw_port), ("api", api_argv, api_port)):
        with server(argv, env, port, tmp / f"{label}.log") as base:
            for target, paths in targets.items():
                got = run_load(base, key, paths, args.rate, args.seconds, tmp)
                figures[(label, target)] = got
                print(
                    f"{label:4} {target:11} {got['achieved_rate']:6.0f} req/s  "
                    f"p50 {got['p50_ms']:6.2f} ms  p99 {got['p99_ms']:6.2f} ms  "
                    f"max {got['max_ms']:6.1f} ms  errors {got['errors']}"
                )
    results = []
    for target in targets:
        api, raw = figures[("api", target)], figures[("raw", target)]
        note = f"{args.rate:.0f} req/s for {args.seconds:.0f} s, {args.spaces} bays"
        if api["errors"]:
            note += f", {api['errors']} errors"
        results.append(Result(f"api {target} p50", api["p50_ms"], "ms", raw["p50_ms"], note=note))
        results.append(
            Result(
                f"api {target} p99",
                api["p99_ms"],
                "ms",
                raw["p99_ms"],
                note=note,
                limit=LIMIT_P99_MS,
            )
        )
    return results
