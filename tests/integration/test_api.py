"""The API against a running stack: real PostgreSQL, the Kafka-protocol broker, a worker
and a projector. Writes go through the fold; reads come from the read model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from parkstream.config import Settings
from parkstream.harness import Services
from tests.support.api import ApiStack, api_stack, until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SENSOR = "70b3d57ed0000a01"
LIGHT = "2020203705250b01"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiStack]:
    settings = Settings(
        profile="test",
        kafka_bootstrap=services.kafka_bootstrap,
        database_url=SecretStr(services.database_url),
        mqtt_url=services.mqtt_url,
        topic_prefix=f"t-api-{datetime.now(UTC):%H%M%S%f}",
        api_command_wait_s=15.0,
    )
    async with api_stack(settings, tmp_path_factory.mktemp("worker")) as s:
        await s.tenant("acme", ("app-acme",))
        await s.tenant("rival")
        yield s


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def acme(stack: ApiStack) -> dict[str, Any]:
    """A site with two bays of tenant acme, registered through the API."""
    admin = await stack.key("acme", "admin")
    async with stack.client(admin) as c:
        r = await c.post(
            "/v1/sites",
            json={"site_id": "north", "name": " North garage ", "time_zone": "Europe/Amsterdam"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "North garage"
        ids = []
        for code in ("b1", "b2"):
            r = await c.post(
                "/v1/sites/north/spaces",
                json={"name": f"  Bay {code} ", "code": code, "config": {"heartbeat_s": 600}},
            )
            assert r.status_code == 202, r.text
            assert r.headers["location"] == f"/v1/spaces/{r.json()['space_id']}"
            ids.append(r.json()["space_id"])
        r = await c.put(f"/v1/spaces/{ids[0]}/devices/sensor", json={"dev_eui": SENSOR.upper()})
        assert r.status_code == 202, r.text
        r = await c.put(f"/v1/spaces/{ids[0]}/devices/display", json={"dev_eui": LIGHT})
        assert r.status_code == 202, r.text

        async def registered() -> Any:
            r = await c.get("/v1/spaces", params={"site_id": "north"})
            items = r.json()["items"]
            ready = len(items) == 2 and items[0].get("sensor") and items[0].get("display")
            return items if ready else None

        items = await until("both bays in the read model", registered)
    return {"admin": admin, "spaces": ids, "items": items}


async def test_registered_bays_read_back_normalised(stack: ApiStack, acme: dict[str, Any]) -> None:
    from parkstream.api import models

    first, second = acme["items"]
    # What the fast path writes is what the OpenAPI document promises.
    async with stack.client(acme["admin"]) as c:
        page = (await c.get("/v1/spaces")).json()
        one = (await c.get(f"/v1/spaces/{first['space_id']}")).json()
    assert models.Page[models.SpaceOut].model_validate(page).model_dump(mode="json") == page
    assert models.SpaceOut.model_validate(one).model_dump(mode="json") == one
    assert one == page["items"][0]
    assert [first["code"], second["code"]] == ["B1", "B2"]
    assert first["name"] == "Bay b1"
    assert first["time_zone"] == "Europe/Amsterdam"
    assert first["sensor"]["dev_eui"] == SENSOR
    assert first["display"]["dev_eui"] == LIGHT
    assert first["state"] == "UNKNOWN"
    assert first["explanation"]["layer"] == first["layer"]
    assert first["config"]["heartbeat_s"] == 600


async def test_keys_are_checked(stack: ApiStack, acme: dict[str, Any]) -> None:
    reader = await stack.key("acme", "read")
    expired = await stack.key("acme", "read", expires_in=timedelta(seconds=1))
    revoked = await stack.key("acme", "admin")
    from parkstream.api.keys import parse, revoke_key

    parsed = parse(revoked)
    assert parsed is not None
    await revoke_key(stack.db, parsed[0])
    await asyncio.sleep(1.1)
    async with stack.client() as c:
        r = await c.get("/v1/spaces")
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 401
        assert "X-API-Key" in r.json()["detail"]
        for key, status in (
            ("nonsense", 401),
            (reader[:-1] + ("A" if reader[-1] != "A" else "B"), 401),
            (expired, 403),
            (revoked, 403),
        ):
            r = await c.get("/v1/spaces", headers={"X-API-Key": key})
            assert r.status_code == status, (key, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        r = await c.get("/v1/spaces", headers={"X-API-Key": reader})
        assert r.status_code == 200
        assert int(r.headers["x-ratelimit-remaining"]) >= 0
        r = await c.put(
            f"/v1/spaces/{acme['spaces'][0]}/override",
            json={"state": "BLOCKED"},
            headers={"X-API-Key": reader},
        )
        assert r.status_code == 403
        assert "write" in r.json()["detail"]
    # Only the hash of a key is stored, and its use is recorded.
    row = await stack.db.fetchrow(
        "SELECT secret_sha256, last_used_at FROM api_keys WHERE key_id = $1", reader[4:16]
    )
    assert reader.split("_")[-1].encode() not in bytes(row["secret_sha256"])
    await until(
        "last_used_at written",
        lambda: stack.db.fetchval(
            "SELECT last_used_at IS NOT NULL FROM api_keys WHERE key_id = $1", reader[4:16]
        ),
    )


async def test_invalid_requests_name_the_field(stack: ApiStack, acme: dict[str, Any]) -> None:
    async with stack.client(acme["admin"]) as c:
        r = await c.post("/v1/sites/north/spaces", json={"name": "   ", "code": "B9"})
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert [p["name"] for p in r.json()["invalid-params"]] == ["body.name"]
        r = await c.post("/v1/sites/north/spaces", json={"name": "x", "code": "B-9"})
        assert [p["name"] for p in r.json()["invalid-params"]] == ["body.code"]
        r = await c.post("/v1/sites/north/spaces", json={"name": "x" * 101, "code": "B9"})
        assert r.status_code == 422
        r = await c.post("/v1/sites/north/spaces", json={"name": "Again", "code": "b1"})
        assert r.status_code == 409
        assert "B1" in r.json()["detail"]
        r = await c.post(
            "/v1/sites", json={"site_id": "south", "name": "S", "time_zone": "Mars/Olympus"}
        )
        assert [p["name"] for p in r.json()["invalid-params"]] == ["body.time_zone"]
        r = await c.get("/v1/spaces", params={"cursor": "not-a-cursor"})
        assert r.status_code == 422
        assert r.json()["invalid-params"][0]["name"] == "query.cursor"
        r = await c.get("/v1/spaces", params={"limit": 0})
        assert r.json()["invalid-params"][0]["name"] == "query.limit"
        r = await c.post(
            f"/v1/spaces/{acme['spaces'][0]}/reservations",
            json={"starts_at": "2030-01-01T10:00:00", "ends_at": "2030-01-01T11:00:00Z"},
        )
        assert r.json()["invalid-params"][0]["name"] == "body.starts_at"
        r = await c.get("/v1/nowhere")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"


async def test_sensor_readings_and_overrides_explain_themselves(
    stack: ApiStack, acme: dict[str, Any]
) -> None:
    from tests.support.stack import Driver

    space = acme["spaces"][0]
    async with Driver(stack.settings, tenant="acme") as driver, stack.client(acme["admin"]) as c:
        now = datetime.now(UTC)
        await driver.reading(SENSOR, True, now)

        async def occupied() -> Any:
            body = (await c.get(f"/v1/spaces/{space}")).json()
            return body if body["state"] == "OCCUPIED" else None

        body = await until("the bay occupied", occupied)
        assert body["layer"] == "sensor"
        assert body["explanation"]["cause_event_ids"]
        assert body["display"]["desired"]["for_state"] == "OCCUPIED"

        until_at = (now + timedelta(hours=2)).isoformat()
        r = await c.put(
            f"/v1/spaces/{space}/override",
            json={"state": "MAINTENANCE", "reason": "repaint", "until": until_at},
        )
        assert r.status_code == 202, r.text

        async def maintenance() -> Any:
            body = (await c.get(f"/v1/spaces/{space}")).json()
            return body if body["state"] == "MAINTENANCE" else None

        body = await until("the override wins", maintenance)
        assert body["layer"] == "override"
        assert body["override"]["reason"] == "repaint"
        assert body["next_change"]["reason"]
        r = await c.get("/v1/spaces", params={"state": "MAINTENANCE"})
        assert [s["space_id"] for s in r.json()["items"]] == [space]
        assert (await c.delete(f"/v1/spaces/{space}/override")).status_code == 202
        await until("override cleared", occupied)

        history = (await c.get(f"/v1/spaces/{space}/actuations")).json()["items"]
        changes = [a["to_state"] for a in history if a["type"] == "space.state_changed"]
        assert changes[:3] == ["OCCUPIED", "MAINTENANCE", "OCCUPIED"]

        # The past, folded from the log: before the override began the bay was occupied.
        maint_at = next(a for a in history if a["to_state"] == "MAINTENANCE")["occurred_at"]
        before = datetime.fromisoformat(maint_at) - timedelta(microseconds=1)
        r = await c.get(f"/v1/spaces/{space}/as-of", params={"at": before.isoformat()})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "OCCUPIED"
        r = await c.get(f"/v1/spaces/{space}/as-of", params={"at": maint_at})
        assert r.json()["state"] == "MAINTENANCE"
        assert r.json()["layer"] == "override"
        r = await c.get(f"/v1/spaces/{space}/as-of", params={"at": "2001-01-01T00:00:00Z"})
        assert r.status_code == 404

        devices = (await c.get("/v1/devices")).json()["items"]
        assert {d["dev_eui"] for d in devices} == {SENSOR, LIGHT}
        sensor = next(d for d in devices if d["dev_eui"] == SENSOR)
        assert sensor["role"] == "sensor"
        assert sensor["last_seen_at"] is not None


async def test_reservations_are_decided_by_the_fold(stack: ApiStack, acme: dict[str, Any]) -> None:
    space = acme["spaces"][1]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()}
    async with stack.client(acme["admin"]) as c:
        r = await c.post(
            f"/v1/spaces/{space}/reservations", json=window, headers={"Idempotency-Key": "k-1"}
        )
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["status"] == "confirmed"
        assert r.headers["location"] == f"/v1/reservations/{first['reservation_id']}"
        # A retry with the same key is the same reservation, not a conflict.
        again = await c.post(
            f"/v1/spaces/{space}/reservations", json=window, headers={"Idempotency-Key": "k-1"}
        )
        assert again.status_code == 201
        assert again.json()["reservation_id"] == first["reservation_id"]
        # The same key with another body is refused.
        other = {**window, "kind": "vip"}
        r = await c.post(
            f"/v1/spaces/{space}/reservations", json=other, headers={"Idempotency-Key": "k-1"}
        )
        assert r.status_code == 422
        # An overlapping request names the reservation it conflicts with.
        later = {
            "starts_at": (start + timedelta(hours=1)).isoformat(),
            "ends_at": (start + timedelta(hours=3)).isoformat(),
        }
        r = await c.post(f"/v1/spaces/{space}/reservations", json=later)
        assert r.status_code == 409, r.text
        assert r.json()["conflicting_reservation_id"] == first["reservation_id"]
        assert r.headers["content-type"] == "application/problem+json"
        # Availability over the window: the reserved bay is taken, the other one is free.
        r = await c.get(
            "/v1/sites/north/availability",
            params={"from": window["starts_at"], "to": window["ends_at"]},
        )
        assert r.status_code == 200, r.text
        free = [s["space_id"] for s in r.json()["available"]]
        assert space not in free
        assert r.json()["total"] == 2
        listed = (await c.get("/v1/reservations", params={"space_id": space})).json()["items"]
        assert [x["reservation_id"] for x in listed] == [first["reservation_id"]]
        r = await c.delete(f"/v1/reservations/{first['reservation_id']}")
        assert r.status_code == 202

        async def cancelled() -> Any:
            got = (await c.get(f"/v1/reservations/{first['reservation_id']}")).json()
            return got["status"] == "cancelled"

        await until("the reservation cancelled", cancelled)


async def test_fifty_concurrent_requests_confirm_exactly_one(
    stack: ApiStack, acme: dict[str, Any]
) -> None:
    space = acme["spaces"][1]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
    writer = await stack.key("acme", "write")
    async with stack.client(writer) as c:
        answers = await asyncio.gather(
            *(
                c.post(
                    f"/v1/spaces/{space}/reservations",
                    json=window,
                    headers={"Idempotency-Key": f"burst-{i}"},
                )
                for i in range(50)
            )
        )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 49, codes
    winner = next(a for a in answers if a.status_code == 201).json()["reservation_id"]
    assert all(
        a.json()["conflicting_reservation_id"] == winner for a in answers if a.status_code == 409
    )


async def test_rate_limits_and_cors(stack: ApiStack, acme: dict[str, Any]) -> None:
    from parkstream.api.app import create_app
    from parkstream.api.context import RateLimits

    settings = stack.settings.model_copy(
        update={
            "api_rate_read_key": "3/minute",
            "api_cors_origins": ["https://ops.example.com"],
        }
    )
    ctx = stack.ctx.__class__(
        **{**stack.ctx.__dict__, "limits": RateLimits.from_settings(settings)}
    )
    app = create_app(settings, context=ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://api",
        headers={"X-API-Key": acme["admin"], "Origin": "https://ops.example.com"},
    ) as c:
        seen = [await c.get("/v1/sites") for _ in range(4)]
        assert [r.status_code for r in seen] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in seen[:3]] == ["2", "1", "0"]
        assert int(seen[3].headers["retry-after"]) > 0
        assert seen[3].headers["content-type"] == "application/problem+json"
        assert seen[0].headers["access-control-allow-origin"] == "https://ops.example.com"
        r = await c.get("/v1/sites", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in r.headers
        # Writes are counted apart from reads.
        r = await c.put("/v1/display-policy", json={"version": 2, "styles": {}})
        assert r.status_code == 202, r.text


async def test_operations_endpoints(stack: ApiStack) -> None:
    async with stack.client() as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = await c.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        metrics = await c.get("/metrics")
        assert 'route="/healthz",status="200"' in metrics.text
        spec = (await c.get("/openapi.json")).json()
        contract = (await c.get("/asyncapi.json")).json()
    assert contract["asyncapi"].startswith("3.")
    assert set(contract["channels"]) == {
        "device-events.v1",
        "space-commands.v1",
        "space-events.v1",
        "downlinks.v1",
        "deadletter.v1",
    }
    assert spec["components"]["securitySchemes"]
    paths = spec["paths"]
    assert "/v1/spaces/{space_id}/reservations" in paths
    post = paths["/v1/spaces/{space_id}/reservations"]["post"]
    assert {"201", "202", "409", "422"} <= set(post["responses"])


# --- tenant isolation -------------------------------------------------------------------

ORPHAN = "a84041000000beef"


def _bodies(start: datetime) -> dict[tuple[str, str], Any]:
    """A valid body for every write route, so only the tenant decides the answer."""
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
    return {
        ("POST", "/v1/sites"): {"site_id": "rival-site", "name": "R", "time_zone": "UTC"},
        ("POST", "/v1/sites/{site_id}/spaces"): {"name": "Sneaky", "code": "S1"},
        ("PATCH", "/v1/spaces/{space_id}"): {"name": "Renamed"},
        ("POST", "/v1/spaces/{space_id}/archive"): {"reason": "x"},
        ("POST", "/v1/spaces/{space_id}/restore"): {},
        ("PUT", "/v1/spaces/{space_id}/devices/{role}"): {"dev_eui": "1122334455667788"},
        ("PUT", "/v1/spaces/{space_id}/override"): {"state": "BLOCKED"},
        ("PUT", "/v1/display-policy"): {"version": 7, "styles": {}},
        ("POST", "/v1/orphan-devices/{dev_eui}/assign"): {"space_id": "x", "role": "sensor"},
        ("POST", "/v1/spaces/{space_id}/reservations"): window,
    }


async def test_another_tenant_sees_nothing(stack: ApiStack, acme: dict[str, Any]) -> None:
    """Every route, called with a second tenant's admin key and the first tenant's ids:
    404 for anything addressed by id, and lists without a trace of the first tenant."""
    space = acme["spaces"][0]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=9)
    async with stack.client(acme["admin"]) as c:
        r = await c.post(
            f"/v1/spaces/{space}/reservations",
            json={
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=1)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        reservation = r.json()["reservation_id"]
        request_id = await stack.db.fetchval(
            "SELECT request_id FROM reservation_requests WHERE reservation_id = $1", reservation
        )
        await stack.db.execute(
            "INSERT INTO orphan_devices (dev_eui, first_seen_at, last_seen_at, application_id) "
            "VALUES ($1, now(), now(), 'app-acme') ON CONFLICT DO NOTHING",
            ORPHAN,
        )
        assert [o["dev_eui"] for o in (await c.get("/v1/orphan-devices")).json()] == [ORPHAN]
    params = {
        "space_id": space,
        "site_id": "north",
        "reservation_id": reservation,
        "request_id": request_id,
        "dev_eui": ORPHAN,
        "role": "sensor",
    }
    secrets_of_acme = [space, acme["spaces"][1], reservation, request_id, ORPHAN, "north"]
    bodies = _bodies(start + timedelta(days=1))
    rival = await stack.key("rival", "admin")
    walked = set()
    async with stack.client(rival) as c:
        spec = (await c.get("/openapi.json")).json()
        for path, operations in spec["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for method in sorted(m.upper() for m in operations):
                walked.add((method, path))
                url = path.format(**{k: v for k, v in params.items() if "{" + k + "}" in path})
                query = {}
                if path.endswith("/as-of"):
                    query = {"at": datetime.now(UTC).isoformat()}
                if path.endswith("/availability"):
                    query = {
                        "from": start.isoformat(),
                        "to": (start + timedelta(hours=1)).isoformat(),
                    }
                r = await c.request(method, url, json=bodies.get((method, path)), params=query)
                where = f"{method} {path} -> {r.status_code} {r.text[:200]}"
                if "{" in path:
                    assert r.status_code == 404, where
                    assert r.headers["content-type"] == "application/problem+json", where
                else:
                    assert r.status_code in (200, 201, 202), where
                    assert not any(s in r.text for s in secrets_of_acme), where
    assert len(walked) >= 25, sorted(walked)
    # Nothing the rival sent touched the first tenant's bays.
    async with stack.client(acme["admin"]) as c:
        body = (await c.get(f"/v1/spaces/{space}")).json()
        assert body["name"] == "Bay b1"
        assert body["archived"] is False
        policy = (await c.get("/v1/display-policy")).json()
        assert policy["policy"]["version"] != 7


async def test_orphans_archive_and_restore(stack: ApiStack, acme: dict[str, Any]) -> None:
    space = acme["spaces"][1]
    for eui in ("a840410000000001", "a840410000000002"):
        await stack.db.execute(
            "INSERT INTO orphan_devices (dev_eui, first_seen_at, last_seen_at, application_id, "
            "device_name) VALUES ($1, now(), now(), 'app-acme', 'found in the field')",
            eui,
        )
    await stack.db.execute(
        "INSERT INTO orphan_devices (dev_eui, first_seen_at, last_seen_at, application_id) "
        "VALUES ('a840410000000003', now(), now(), 'app-of-someone-else')"
    )
    async with stack.client(acme["admin"]) as c:
        seen = {o["dev_eui"] for o in (await c.get("/v1/orphan-devices")).json()}
        assert {"a840410000000001", "a840410000000002"} <= seen
        assert "a840410000000003" not in seen
        r = await c.post("/v1/orphan-devices/A8-40-41-00-00-00-00-01/dismiss")
        assert r.status_code == 204
        r = await c.post(
            "/v1/orphan-devices/a840410000000002/assign",
            json={"space_id": space, "role": "sensor"},
        )
        assert r.status_code == 202, r.text
        assert (await c.post("/v1/orphan-devices/a840410000000003/dismiss")).status_code == 404

        async def assigned() -> Any:
            body = (await c.get(f"/v1/spaces/{space}")).json()
            return (body.get("sensor") or {}).get("dev_eui") == "a840410000000002"

        await until("the orphan is the bay's sensor", assigned)
        left = {o["dev_eui"] for o in (await c.get("/v1/orphan-devices")).json()}
        assert not left & {"a840410000000001", "a840410000000002"}

        # A code is unique within its site, also when it changes.
        r = await c.patch(f"/v1/spaces/{space}", json={"code": "b1"})
        assert r.status_code == 409
        r = await c.patch(f"/v1/spaces/{space}", json={"code": "b20", "name": " Bay twenty "})
        assert r.status_code == 202

        async def renamed() -> Any:
            body = (await c.get(f"/v1/spaces/{space}")).json()
            return body if body["code"] == "B20" else None

        body = await until("the new code", renamed)
        assert body["name"] == "Bay twenty"

        r = await c.post(
            f"/v1/spaces/{space}/archive", json={"reason": "resurfacing", "force": True}
        )
        assert r.status_code == 202

        async def archived() -> Any:
            body = (await c.get(f"/v1/spaces/{space}")).json()
            return body if body["archived"] and body["state"] == "ARCHIVED" else None

        body = await until("the bay archived", archived)
        assert body["archive_reason"] == "resurfacing"
        listed = (await c.get("/v1/spaces", params={"archived": "true"})).json()["items"]
        assert [s["space_id"] for s in listed] == [space]
        assert (await c.post(f"/v1/spaces/{space}/restore", json={})).status_code == 202

        async def restored() -> Any:
            body = (await c.get(f"/v1/spaces/{space}")).json()
            return not body["archived"] and body["state"] != "ARCHIVED"

        await until("the bay restored", restored)
