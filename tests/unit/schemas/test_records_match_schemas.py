"""What ``encode`` writes conforms to the committed schema of its type.

A small validator for the keywords pydantic emits (type, const, enum, properties,
required, items, additionalProperties, propertyNames, anyOf, bounds, pattern); every
other keyword fails the test, so a new one cannot slip through unchecked.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkstream.domain.contract import to_dict
from parkstream.domain.envelope import Envelope
from parkstream.schemas.compat import resolve

from ..domain.strategies import RECORD_CLASSES, records

REPO_SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
NO_STYLES: dict[Any, Any] = {}

ANNOTATIONS = {"title", "description", "default", "$comment", "$schema", "$id", "$defs"}
TYPES: dict[str, Any] = {
    "null": type(None),
    "boolean": bool,
    "string": str,
    "array": list,
    "object": dict,
}


def errors(doc: dict[str, Any], node: Any, value: Any, path: str = "$") -> list[str]:
    schema = resolve(doc, node)
    if "anyOf" in schema:
        options = [errors(doc, option, value, path) for option in schema["anyOf"]]
        return [] if any(not e for e in options) else [f"{path}: matches no anyOf option"]
    unknown = (
        set(schema)
        - ANNOTATIONS
        - {
            "type",
            "const",
            "enum",
            "properties",
            "required",
            "items",
            "additionalProperties",
            "propertyNames",
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
            "pattern",
            "format",
        }
    )
    if unknown:
        return [f"{path}: the test validator does not know {sorted(unknown)}"]
    found: list[str] = []
    kind = schema.get("type")
    if kind is not None and not _is(kind, value):
        return [f"{path}: {value!r} is not {kind}"]
    if "const" in schema and value != schema["const"]:
        found.append(f"{path}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        found.append(f"{path}: {value} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        found.append(f"{path}: {value} > {schema['maximum']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        found.append(f"{path}: shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        found.append(f"{path}: longer than {schema['maxLength']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if schema.get("format") == "date-time":
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            found.append(f"{path}: {value!r} has no offset")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                found.append(f"{path}.{name}: required but missing")
        for name, item in value.items():
            if name in properties:
                found += errors(doc, properties[name], item, f"{path}.{name}")
            elif "additionalProperties" in schema:
                found += errors(doc, schema["additionalProperties"], item, f"{path}.*")
            else:
                found.append(f"{path}.{name}: written but not in the schema")
            if "propertyNames" in schema:
                found += errors(doc, schema["propertyNames"], name, f"{path}(keys)")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += errors(doc, schema["items"], item, f"{path}[{index}]")
    return found


def _is(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, TYPES[kind])


@pytest.mark.parametrize(
    "topic_and_cls",
    [pytest.param((topic, cls), id=f"{topic}:{cls.TYPE}") for topic, cls in RECORD_CLASSES],
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_encoded_record_conforms_to_its_committed_schema(
    topic_and_cls: tuple[str, type[Envelope]], data: st.DataObject
) -> None:
    topic, cls = topic_and_cls
    doc = json.loads((REPO_SCHEMAS / topic / f"{cls.TYPE}.v{cls.VERSION}.json").read_text())
    record = data.draw(records(cls, NO_STYLES))

    assert errors(doc, doc, to_dict(record)) == []


def test_the_validator_reports_a_missing_required_field_and_an_unknown_one() -> None:
    doc = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}

    assert errors(doc, doc, {"b": 1}) == [
        "$.a: required but missing",
        "$.b: written but not in the schema",
    ]
