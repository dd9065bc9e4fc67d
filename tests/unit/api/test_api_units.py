"""The API's pure parts: key format and hashing, cursors, request-body guards, problems."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from parkstream.api import keys, store
from parkstream.api import models as m
from parkstream.api.app import create_app
from parkstream.api.context import ApiContext, ApiMetrics, KeyVerifier, Principal
from parkstream.api.problems import ApiProblem
from parkstream.config import Settings


def test_a_key_is_parsed_and_only_its_hash_matches() -> None:
    key = keys.generate()
    assert keys.parse(key.token) == (key.key_id, key.secret)
    stored = keys.digest(key.secret)
    assert keys.matches(key.secret, stored)
    assert not keys.matches(key.secret[:-1] + "x", stored)
    assert key.secret.encode() not in stored
    for bad in ("", "psk_", key.token + "x", key.token.replace("psk_", "pk_"), key.token[:-1]):
        assert keys.parse(bad) is None


def test_scopes_and_tenant_ids_are_checked() -> None:
    assert keys.check_scopes(["read", "write", "read"]) == ["read", "write"]
    with pytest.raises(keys.KeyStoreError, match="unknown scope"):
        keys.check_scopes(["root"])
    with pytest.raises(keys.KeyStoreError, match="at least one"):
        keys.check_scopes([])
    assert keys.check_tenant_id("acme-2") == "acme-2"
    for bad in ("", "-x", "Acme", "a b", "x" * 64):
        with pytest.raises(keys.KeyStoreError):
            keys.check_tenant_id(bad)


def test_admin_implies_every_scope() -> None:
    admin = Principal("t", "k", frozenset({"admin"}))
    reader = Principal("t", "k", frozenset({"read"}))
    assert admin.allows("write")
    assert admin.allows("read")
    assert reader.allows("read")
    assert not reader.allows("write")


@given(st.lists(st.one_of(st.text(max_size=20), st.integers(-(2**40), 2**40)), max_size=4))
def test_a_cursor_round_trips(values: list[Any]) -> None:
    cursor = store.encode_cursor(values)
    assert store.decode_cursor(cursor, len(values)) == values


@pytest.mark.parametrize("cursor", ["!!", "bm90IGpzb24", store.encode_cursor([1, 2])])
def test_a_foreign_cursor_is_a_422_naming_the_field(cursor: str) -> None:
    with pytest.raises(ApiProblem) as caught:
        store.decode_cursor(cursor, 3)
    assert caught.value.status == 422
    assert caught.value.extra["invalid-params"][0]["name"] == "query.cursor"


def test_bodies_refuse_nul_characters_and_oversized_integers() -> None:
    with pytest.raises(ValidationError, match="NUL"):
        m.ArchiveIn(reason="a\x00b")
    with pytest.raises(ValidationError, match="out of range"):
        m.SpaceIn(name="x", code="A1", config={"heartbeat_s": 2**70})
    with pytest.raises(ValidationError):
        m.SpaceIn(name="x", code="A1", extra_field=1)  # type: ignore[call-arg]
    space = m.SpaceIn(name="  Bay 7 ", code=" b7 ")
    assert (space.name, space.code) == ("Bay 7", "B7")
    for name in ("   ", "x" * 101):
        with pytest.raises(ValidationError):
            m.SpaceIn(name=name, code="B7")
    with pytest.raises(ValidationError):
        m.SpaceIn(name="x", code="B-7")
    assert m.DeviceIn(dev_eui="70-B3-D5-7E-D0-00-12-34").dev_eui == "70b3d57ed0001234"
    with pytest.raises(ValidationError):
        m.OverrideIn(state="UNKNOWN")


def _app() -> Any:
    settings = Settings()
    # No database and no broker: only what fails before either is needed can be asked.
    ctx = ApiContext(settings, None, None, KeyVerifier(None, 5.0), None, ApiMetrics())  # type: ignore[arg-type]
    return create_app(settings, context=ctx)


async def test_errors_are_problem_documents() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app()), base_url="http://a"
    ) as c:
        r = await c.get("/v1/spaces")  # no key: refused before any database access
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert set(body) >= {"type", "title", "status", "detail", "instance"}
        assert body["instance"] == "/v1/spaces"
        assert r.headers["www-authenticate"] == "X-API-Key"
        r = await c.get("/v1/spaces", headers={"X-API-Key": "psk_nope"})
        assert r.status_code == 401
        assert "malformed" in r.json()["detail"]
        r = await c.delete("/healthz")
        assert r.status_code == 405
        assert r.json()["type"].endswith("/method-not-allowed")


def test_the_openapi_document_is_complete() -> None:
    spec = _app().openapi()
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if path.startswith("/v1/")
    ]
    assert len(operations) >= 25
    for path, method, op in operations:
        assert op.get("summary"), (method, path)
        assert op.get("tags"), (method, path)
        assert op.get("security"), (method, path)
        codes = set(op["responses"])
        assert {"401", "403", "422", "429"} <= codes, (method, path, codes)
        problem = op["responses"]["401"]["content"]
        assert "application/problem+json" in problem, (method, path)


async def test_an_unavailable_broker_or_database_is_a_503_to_retry() -> None:
    from aiokafka.errors import KafkaTimeoutError
    from asyncpg.exceptions import CannotConnectNowError
    from fastapi import FastAPI

    from parkstream.api import problems

    app = FastAPI()
    problems.install(app)

    @app.get("/broker")
    async def broker() -> None:
        raise KafkaTimeoutError

    @app.get("/database")
    async def database() -> None:
        raise CannotConnectNowError("starting up")

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as c:
        for path in ("/broker", "/database"):
            r = await c.get(path)
            assert r.status_code == 503, path
            assert r.headers["retry-after"] == "5"
            assert r.json()["type"].endswith("/unavailable")
        r = await c.get("/bug")
        assert r.status_code == 500
        assert r.headers["content-type"] == "application/problem+json"
        assert "a bug" not in r.text  # internals stay in the log
