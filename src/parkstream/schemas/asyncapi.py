"""The AsyncAPI 3.0 document of the public topics: ``schemas/asyncapi.json``.

Built from the topic catalogue (``streams/topics.toml``: names, keys, partitions, configs)
and the JSON Schemas of ``schemas/`` (one message per record type and version), so it
cannot say anything the catalogue and the schemas do not. ``parkstream schemas generate``
writes it, ``parkstream schemas check`` fails when the committed file drifted, and
:func:`document` gives the committed file to whoever serves it.

Each JSON Schema is embedded as the message's payload (``components/schemas``) so the
document stands alone: ``$schema`` and ``$id`` are dropped (the ``$id`` is kept as
``x-schema-id`` and as the ``ce_dataschema`` header) and local ``#/$defs/...`` references
are rewritten to point into the embedded copy. The generated schemas use only keywords
draft-07 knows too, which is what an AsyncAPI Schema Object is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from parkstream.catalogue import TopicSpec
from parkstream.domain.cloudevents import CONTENT_TYPE, INGEST_SOURCE, SPEC_VERSION, ce_type

FILENAME = "asyncapi.json"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"
DEFAULT_PREFIX = "parkstream"
DEFAULT_BOOTSTRAP = "localhost:9092"
HEADERS_SCHEMA = "cloudevents-headers"
PREFIX_PARAMETER = "prefix"

# parkstream writes these topics; other systems write the commands parkstream receives.
RECEIVED_TOPICS = frozenset({"space-commands.v1"})

DESCRIPTION = """\
The Kafka topics other systems read from and write to. Every record value is a JSON \
object `{event_id, type, version, tenant_id, space_id, dev_eui, occurred_at, recorded_at, \
source, causation_id, correlation_id, data}`; `type` and `version` say which message (and \
JSON Schema) it is.

**Compatibility: backward-transitive.** A consumer written against any earlier published \
schema of a type and version keeps working: fields are only ever added, as optional ones; \
nothing is removed, renamed, retyped, tightened or given a new enum value. A change that \
cannot keep that promise is a new `version` of the type (a new message here, both versions \
stay in the topic), and a change to a topic itself (its key, its partitioning) is a new topic \
(`.v2`). Ignore fields you do not know, dispatch on `type` and `version`, deduplicate on \
`event_id` (delivery is at least once).

**CloudEvents 1.0**, Kafka protocol binding, binary content mode: the value is the \
CloudEvent's `data`, the context attributes travel as headers (`ce_specversion`, `ce_id`, \
`ce_source`, `ce_type`, `ce_time`, `ce_subject`, `ce_dataschema`, `ce_schemaversion`, \
`content-type`). `ce_dataschema` names the JSON Schema of the record's type and version.

Topic names carry a deployment prefix (`{prefix}`, default `parkstream`). Partition counts \
and topic settings are those of a production deployment. See docs/compatibility.md."""

_INTEGER_CONFIGS = frozenset(
    {
        "retention.ms",
        "retention.bytes",
        "delete.retention.ms",
        "max.message.bytes",
        "min.insync.replicas",
        "segment.ms",
        "segment.bytes",
    }
)

_KEYS = {
    "space_id": "The bay (`space_id`): every record of one bay is in one partition, in order.",
    "dev_eui": "The device EUI (`dev_eui`, 16 lowercase hex digits): "
    "every record of one device is in one partition, in order.",
    "origin": "Where the refused input came from: its MQTT or Kafka topic (`data.origin_topic`).",
}
# Records of a bay topic that have no bay are keyed by their device instead.
_KEY_FALLBACK = {"space_id": "dev_eui"}


MessageKey = tuple[str, str, int]  # (catalogue topic, record type, version)


class AsyncAPIError(ValueError):
    """The catalogue and the schemas do not describe the same public topics."""


def channel_id(topic: str) -> str:
    return topic


def message_id(type_name: str, version: int) -> str:
    return f"{type_name}.v{version}"


def operation_id(action: str, topic: str) -> str:
    words = topic.replace(".", "-").split("-")
    return action + "".join(word[:1].upper() + word[1:] for word in words)


def build(
    catalogue: Sequence[TopicSpec],
    schemas: Mapping[MessageKey, Mapping[str, Any]],
    version: str,
    examples: Mapping[MessageKey, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The document for the public topics of ``catalogue``.

    ``schemas`` maps (topic, type, version) to the JSON Schema of every record type and
    version a consumer may meet on that topic (current ones and older published ones);
    ``examples`` gives message examples (``name``, ``summary``, ``headers``, ``payload``)
    for some of them.
    """
    examples = examples or {}
    orphans = sorted(set(examples) - set(schemas))
    if orphans:
        raise AsyncAPIError(f"examples of {orphans}, which no schema describes")
    public = [spec for spec in catalogue if spec.public]
    by_topic: dict[str, list[tuple[str, int]]] = {}
    for topic, type_name, type_version in sorted(schemas):
        by_topic.setdefault(topic, []).append((type_name, type_version))
    names = {spec.name for spec in public}
    unknown = sorted(set(by_topic) - names)
    if unknown:
        raise AsyncAPIError(
            f"record types for {', '.join(unknown)}, which the topic catalogue does not "
            "list as public"
        )
    empty = sorted(names - set(by_topic))
    if empty:
        raise AsyncAPIError(f"public topic(s) {', '.join(empty)} carry no record type")

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    components_schemas: dict[str, Any] = {HEADERS_SCHEMA: _headers_schema()}
    for spec in sorted(public, key=lambda s: s.name):
        channel_messages: dict[str, Any] = {}
        for type_name, type_version in by_topic[spec.name]:
            schema = schemas[(spec.name, type_name, type_version)]
            mid = message_id(type_name, type_version)
            components_schemas[mid] = embed(schema, f"#/components/schemas/{mid}")
            messages[mid] = _message(spec, type_name, type_version, schema)
            if (spec.name, type_name, type_version) in examples:
                messages[mid]["examples"] = [
                    dict(example) for example in examples[(spec.name, type_name, type_version)]
                ]
            channel_messages[mid] = {"$ref": f"#/components/messages/{mid}"}
        cid = channel_id(spec.name)
        channels[cid] = _channel(spec, channel_messages)
        action = "receive" if spec.name in RECEIVED_TOPICS else "send"
        operations[operation_id(action, spec.name)] = _operation(action, spec, channel_messages)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "parkstream public topics",
            "version": version,
            "description": DESCRIPTION,
            "license": {
                "name": "Apache-2.0",
                "url": "https://www.apache.org/licenses/LICENSE-2.0",
            },
        },
        "defaultContentType": CONTENT_TYPE.decode(),
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "title": "The deployment's Kafka cluster",
                "description": "Any Kafka-protocol broker of the deployment "
                "(parkstream's own setting: PARKSTREAM_KAFKA_BOOTSTRAP).",
                "variables": {
                    "bootstrap": {
                        "default": DEFAULT_BOOTSTRAP,
                        "description": "A bootstrap server, host:port.",
                    }
                },
                "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING}},
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": components_schemas,
            "messages": messages,
            "parameters": {
                PREFIX_PARAMETER: {
                    "default": DEFAULT_PREFIX,
                    "description": "The deployment's topic prefix "
                    "(parkstream's setting: PARKSTREAM_TOPIC_PREFIX).",
                    "examples": [DEFAULT_PREFIX],
                }
            },
        },
    }


def embed(schema: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    """A standalone JSON Schema as a Schema Object at ``pointer`` of the document."""
    embedded: dict[str, Any] = {
        key: value for key, value in schema.items() if key not in ("$schema", "$id", "$comment")
    }
    if "$id" in schema:
        embedded["x-schema-id"] = schema["$id"]
    result: dict[str, Any] = _rewrite_refs(embedded, pointer)
    return result


def _rewrite_refs(node: Any, pointer: str) -> Any:
    if isinstance(node, Mapping):
        out = {key: _rewrite_refs(value, pointer) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            out["$ref"] = pointer + ref[1:]
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, pointer) for item in node]
    return node


def _channel(spec: TopicSpec, messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": f"{{{PREFIX_PARAMETER}}}.{spec.name}",
        "title": spec.name,
        "description": f"{spec.description} Key: `{spec.key}`.",
        "parameters": {PREFIX_PARAMETER: {"$ref": f"#/components/parameters/{PREFIX_PARAMETER}"}},
        "servers": [{"$ref": "#/servers/kafka"}],
        "messages": messages,
        "bindings": {
            "kafka": {
                "partitions": spec.partitions,
                "replicas": spec.replication_factor,
                "topicConfiguration": _topic_configuration(spec.config),
                "bindingVersion": KAFKA_BINDING,
                "x-key": spec.key,
            }
        },
    }


def _topic_configuration(config: Mapping[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in sorted(config.items()):
        if key == "cleanup.policy":
            result[key] = [part.strip() for part in value.split(",")]
        elif key in _INTEGER_CONFIGS:
            result[key] = int(value)
        else:
            result[key] = value
    return result


def _operation(action: str, spec: TopicSpec, messages: Mapping[str, Any]) -> dict[str, Any]:
    cid = channel_id(spec.name)
    if action == "send":
        summary = f"parkstream writes {spec.name}; other systems read it."
    else:
        summary = f"parkstream reads {spec.name}; other systems write it."
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{cid}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{cid}/messages/{mid}"} for mid in messages],
    }


def _message(
    spec: TopicSpec, type_name: str, type_version: int, schema: Mapping[str, Any]
) -> dict[str, Any]:
    mid = message_id(type_name, type_version)
    message: dict[str, Any] = {
        "name": type_name,
        "title": f"{type_name} v{type_version}",
        "summary": schema.get("description") or f"A `{type_name}` record, version {type_version}.",
        "contentType": CONTENT_TYPE.decode(),
        "headers": _message_headers(spec, type_name, type_version, schema),
        "payload": {"$ref": f"#/components/schemas/{mid}"},
        "bindings": {"kafka": {"key": _key_schema(spec, schema), "bindingVersion": KAFKA_BINDING}},
    }
    return message


def _key_schema(spec: TopicSpec, schema: Mapping[str, Any]) -> dict[str, Any]:
    key = spec.key
    description = _KEYS.get(key, f"The record's `{key}`.")
    properties: Mapping[str, Any] = schema.get("properties") or {}
    field = properties.get(key)
    fallback = _KEY_FALLBACK.get(key)
    if fallback is not None and not (isinstance(field, Mapping) and field.get("type") == "string"):
        # A type of a bay topic whose records may have no bay (e.g. device.orphan_seen).
        description += f" A record without a bay is keyed by its `{fallback}`."
    return {"type": "string", "description": description}


def _message_headers(
    spec: TopicSpec, type_name: str, type_version: int, schema: Mapping[str, Any]
) -> dict[str, Any]:
    """The CloudEvents headers of one message: the shared schema with its constants."""
    dataschema = schema.get("$id")
    constants: dict[str, Any] = {
        "ce_type": {"type": "string", "const": ce_type(type_name, type_version)},
        "ce_schemaversion": {"type": "string", "const": str(type_version)},
    }
    if isinstance(dataschema, str):
        constants["ce_dataschema"] = {"type": "string", "const": dataschema}
    return {
        "type": "object",
        "allOf": [
            {"$ref": f"#/components/schemas/{HEADERS_SCHEMA}"},
            {"type": "object", "properties": constants},
        ],
    }


def _headers_schema() -> dict[str, Any]:
    ingest = INGEST_SOURCE.decode()
    return {
        "type": "object",
        "title": "CloudEvents headers",
        "description": "CloudEvents 1.0 context attributes as Kafka headers (binary content "
        "mode); every header value is UTF-8 text. Headers not listed here may appear.",
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_dataschema",
            "ce_schemaversion",
            "content-type",
        ],
        "properties": {
            "ce_specversion": {"type": "string", "const": SPEC_VERSION.decode()},
            "ce_id": {
                "type": "string",
                "description": "The record's `event_id`: a repeated record has the same id.",
            },
            "ce_source": {
                "type": "string",
                "pattern": "^urn:parkstream:(tenant:.+|ingest)$",
                "description": "`urn:parkstream:tenant:<tenant_id>`, or "
                f"`{ingest}` for records not attributed to a tenant.",
            },
            "ce_type": {
                "type": "string",
                "pattern": r"^dev\.parkstream\.[a-z_.]+\.v[0-9]+$",
                "description": "`dev.parkstream.<type>.v<version>`.",
            },
            "ce_time": {
                "type": "string",
                "format": "date-time",
                "description": "The record's `occurred_at` (RFC 3339, UTC).",
            },
            "ce_subject": {
                "type": "string",
                "description": "The bay (`space_id`), or else the device (`dev_eui`); "
                "absent when the record has neither.",
            },
            "ce_dataschema": {
                "type": "string",
                "format": "uri",
                "description": "The `$id` of the record's JSON Schema (type and version).",
            },
            "ce_schemaversion": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "The record's `version` (extension attribute).",
            },
            "content-type": {"type": "string", "const": CONTENT_TYPE.decode()},
        },
    }


# --- serving ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _committed_text() -> str:
    resource = resources.files("parkstream.schemas").joinpath(FILENAME)
    try:
        return resource.read_text("utf-8")
    except FileNotFoundError as exc:  # pragma: no cover - a broken installation
        raise FileNotFoundError(
            f"parkstream/schemas/{FILENAME} is not installed with the package "
            "(it links to schemas/asyncapi.json and must be listed in its package data)"
        ) from exc


def document() -> dict[str, Any]:
    """The committed AsyncAPI document, as shipped with the package (a fresh copy)."""
    doc: dict[str, Any] = json.loads(_committed_text())
    return doc
