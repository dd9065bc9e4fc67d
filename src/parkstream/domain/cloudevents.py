"""CloudEvents 1.0 Kafka protocol binding, binary content mode, for every parkstream record.

The record value stays the parkstream JSON record (the CloudEvent's ``data``); the
context attributes travel as Kafka headers, so generic CloudEvents tooling can route a
record without parsing its value:

=====================  ==========================================================
``ce_specversion``     ``1.0``
``ce_id``              the record's ``event_id`` (deterministic: a repeat has the same id)
``ce_source``          ``urn:parkstream:tenant:<tenant_id>``, or ``urn:parkstream:ingest``
                       for records not yet attributed to a tenant (device events,
                       dead letters)
``ce_type``            ``dev.parkstream.<type>.v<version>``, e.g.
                       ``dev.parkstream.space.state_changed.v1``
``ce_time``            ``occurred_at`` (RFC 3339, UTC)
``ce_subject``         the bay (``space_id``) or else the device (``dev_eui``), if any
``ce_dataschema``      the JSON Schema of the type and version under ``schemas/``
``ce_schemaversion``   the record's schema version (extension attribute)
``content-type``       ``application/json``
=====================  ==========================================================

Header values are UTF-8 bytes; the constant parts are built once per type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from parkstream.domain.envelope import Envelope, utc_iso

SPEC_VERSION = b"1.0"
CONTENT_TYPE = b"application/json"
TYPE_PREFIX = "dev.parkstream."
SCHEMA_BASE_URL = "https://parkstream.dev/schemas/"
INGEST_SOURCE = b"urn:parkstream:ingest"

Headers = list[tuple[str, bytes]]


def ce_type(type_name: str, version: int) -> str:
    """The CloudEvents ``type`` of a parkstream record type and version."""
    return f"{TYPE_PREFIX}{type_name}.v{version}"


def ce_source(tenant_id: str | None) -> str:
    return f"urn:parkstream:tenant:{tenant_id}" if tenant_id else INGEST_SOURCE.decode()


@lru_cache(maxsize=512)
def _constant(topic: str, type_name: str, version: int) -> tuple[tuple[str, bytes], ...]:
    return (
        ("ce_specversion", SPEC_VERSION),
        ("ce_type", ce_type(type_name, version).encode()),
        ("ce_dataschema", f"{SCHEMA_BASE_URL}{topic}/{type_name}.v{version}.json".encode()),
        ("ce_schemaversion", str(version).encode()),
        ("content-type", CONTENT_TYPE),
    )


@lru_cache(maxsize=4096)
def _source(tenant_id: str | None) -> bytes:
    return ce_source(tenant_id).encode()


def headers(record: Envelope, topic: str) -> Headers:
    """The binary-mode headers of ``record`` on the catalogue topic ``topic``.

    ``topic`` is the catalogue name (``space-events.v1``), without the deployment prefix,
    because the schema URL names the public contract, not a deployment.
    """
    out: Headers = [
        ("ce_id", record.event_id.encode()),
        ("ce_source", _source(record.tenant_id)),
        ("ce_time", utc_iso(record.occurred_at).encode()),
    ]
    subject = record.space_id or record.dev_eui
    if subject:
        out.append(("ce_subject", subject.encode()))
    out.extend(_constant(topic, record.type, record.version))
    return out


def attributes(raw_headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """The CloudEvents attributes of a consumed record's headers (``ce_`` prefix removed)."""
    result: dict[str, str] = {}
    for key, value in raw_headers or ():
        if key.startswith("ce_"):
            result[key[3:]] = value.decode("utf-8", "replace")
        elif key == "content-type":
            result["datacontenttype"] = value.decode("utf-8", "replace")
    return result


def check(attrs: Mapping[str, str], record: Envelope) -> list[str]:
    """What in ``attrs`` disagrees with ``record`` (empty when the headers are right)."""
    problems = []
    expected = {
        "specversion": SPEC_VERSION.decode(),
        "id": record.event_id,
        "type": ce_type(record.type, record.version),
        "time": utc_iso(record.occurred_at),
        "source": ce_source(record.tenant_id),
        "datacontenttype": CONTENT_TYPE.decode(),
    }
    for name, want in expected.items():
        if attrs.get(name) != want:
            problems.append(f"{name}: expected {want!r}, got {attrs.get(name)!r}")
    return problems
