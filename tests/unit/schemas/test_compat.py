"""The compatibility checker on small hand-written schemas: each breaking kind, and what is safe."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from parkstream.schemas.compat import SchemaError, check_compatible


def record(**properties: Any) -> dict[str, Any]:
    """An object schema whose fields are all required, like the generated ones."""
    return {"type": "object", "properties": properties, "required": list(properties)}


NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}

OLD = {
    "$defs": {
        "Config": record(
            heartbeat_s={"type": "integer", "minimum": 10, "maximum": 86400},
            name={"type": "string", "maxLength": 100},
        ),
        "State": {"enum": ["FREE", "OCCUPIED"], "type": "string"},
    },
    **record(
        type={"const": "space.registered", "type": "string"},
        at={"type": "string", "format": "date-time"},
        reason=NULLABLE_STRING,
        config={"$ref": "#/$defs/Config"},
        state={"$ref": "#/$defs/State"},
        gateway_ids={"type": "array", "items": {"type": "string"}},
        tags={"type": "object", "additionalProperties": {"type": "string"}},
    ),
}


def evolve(change: Any) -> dict[str, Any]:
    new = copy.deepcopy(OLD)
    change(new)
    return new


def messages(new: dict[str, Any]) -> list[str]:
    return [str(v) for v in check_compatible(OLD, new)]


def test_an_unchanged_schema_is_compatible() -> None:
    assert check_compatible(OLD, copy.deepcopy(OLD)) == []


# --- breaking ---------------------------------------------------------------------------


def test_a_removed_field_is_breaking() -> None:
    new = evolve(lambda s: s["properties"].pop("reason"))
    assert messages(new) == [
        "$.reason: field removed (or renamed): consumers of the old schema read it"
    ]


def test_a_renamed_field_is_a_removal_and_an_addition() -> None:
    def rename(s: dict[str, Any]) -> None:
        s["properties"]["occurred_at"] = s["properties"].pop("at")
        s["required"] = [("occurred_at" if n == "at" else n) for n in s["required"]]

    assert messages(evolve(rename)) == [
        "$.at: field removed (or renamed): consumers of the old schema read it",
        "$.occurred_at: new required field: older records do not carry it",
    ]


def test_a_removed_field_of_a_nested_model_is_reported_with_its_path() -> None:
    new = evolve(lambda s: s["$defs"]["Config"]["properties"].pop("heartbeat_s"))
    assert [v.path for v in check_compatible(OLD, new)] == ["$.config.heartbeat_s"]


def test_a_changed_type_is_breaking() -> None:
    new = evolve(lambda s: s["$defs"]["Config"]["properties"].update(name={"type": "integer"}))
    assert messages(new) == ["$.config.name: type changed from string to integer"]


def test_widening_integer_to_number_is_breaking_for_consumers_of_integers() -> None:
    def widen(s: dict[str, Any]) -> None:
        s["$defs"]["Config"]["properties"]["heartbeat_s"]["type"] = "number"

    assert messages(evolve(widen)) == ["$.config.heartbeat_s: type changed from integer to number"]


def test_removing_null_from_a_union_is_breaking() -> None:
    new = evolve(lambda s: s["properties"].update(reason={"type": "string"}))
    assert messages(new) == [
        "$.reason: no longer allows null: older records holding null no longer validate"
    ]


def test_adding_null_to_a_union_is_breaking() -> None:
    nullable = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
    new = evolve(lambda s: s["properties"].update(at=nullable))
    assert messages(new) == [
        "$.at: may now be null: consumers of the old schema do not expect null"
    ]


def test_a_new_required_field_is_breaking() -> None:
    def add(s: dict[str, Any]) -> None:
        s["properties"]["site_id"] = {"type": "string"}
        s["required"].append("site_id")

    assert messages(evolve(add)) == ["$.site_id: new required field: older records do not carry it"]


def test_a_required_field_becoming_optional_is_breaking() -> None:
    new = evolve(lambda s: s["required"].remove("at"))
    assert messages(new) == [
        "$.at: field no longer required: consumers of the old schema rely on it being present"
    ]


def test_an_optional_field_becoming_required_is_breaking() -> None:
    old = evolve(lambda s: s["required"].remove("reason"))
    assert [str(v) for v in check_compatible(old, OLD)] == [
        "$.reason: optional field became required: older records without it no longer validate"
    ]


def test_an_added_enum_value_is_breaking() -> None:
    new = evolve(lambda s: s["$defs"]["State"]["enum"].append("RESERVED"))
    assert messages(new) == [
        '$.state: new value(s) "RESERVED": consumers of the old schema do not know them'
    ]


def test_a_removed_enum_value_is_breaking() -> None:
    new = evolve(lambda s: s["$defs"]["State"]["enum"].remove("OCCUPIED"))
    assert messages(new) == [
        '$.state: value(s) "OCCUPIED" removed: older records holding them no longer validate'
    ]


def test_a_changed_const_is_breaking() -> None:
    new = evolve(lambda s: s["properties"]["type"].update(const="space.created"))
    assert messages(new) == ['$.type: value changed from "space.registered" to "space.created"']


def test_an_enum_turned_into_any_string_is_breaking() -> None:
    new = evolve(lambda s: s["$defs"].update(State={"type": "string"}))
    assert messages(new) == [
        '$.state: no longer restricted to "FREE", "OCCUPIED": '
        "consumers of the old schema get values they do not know"
    ]


def test_a_changed_array_item_type_is_reported_under_the_items_path() -> None:
    new = evolve(lambda s: s["properties"]["gateway_ids"].update(items={"type": "integer"}))
    assert messages(new) == ["$.gateway_ids[*]: type changed from string to integer"]


def test_a_changed_map_value_type_is_reported_under_the_values_path() -> None:
    def change(s: dict[str, Any]) -> None:
        s["properties"]["tags"]["additionalProperties"] = {"type": "integer"}

    assert messages(evolve(change)) == ["$.tags.*: type changed from string to integer"]


def test_map_keys_are_compared_like_values() -> None:
    def keyed(values: list[str]) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "propertyNames": {"enum": values, "type": "string"},
        }

    old = record(styles=keyed(["FREE"]))
    new = record(styles=keyed(["FREE", "BLOCKED"]))
    assert [str(v) for v in check_compatible(old, new)] == [
        '$.styles(keys): new value(s) "BLOCKED": consumers of the old schema do not know them'
    ]


def test_a_field_inside_a_nullable_nested_model_is_followed() -> None:
    def nullable_config(s: dict[str, Any]) -> None:
        s["properties"]["config"] = {"anyOf": [{"$ref": "#/$defs/Config"}, {"type": "null"}]}

    old = evolve(nullable_config)

    def drop_name(s: dict[str, Any]) -> None:
        nullable_config(s)
        s["$defs"]["Config"]["properties"].pop("name")

    assert [str(v) for v in check_compatible(old, evolve(drop_name))] == [
        "$.config.name: field removed (or renamed): consumers of the old schema read it"
    ]


@pytest.mark.parametrize(
    ("keyword", "old_value", "new_value"),
    [
        ("maxLength", 100, 50),
        ("minimum", 10, 60),
        ("maximum", 86400, 3600),
        ("pattern", None, "^[A-Z]+$"),
    ],
)
def test_a_tightened_bound_is_breaking(keyword: str, old_value: Any, new_value: Any) -> None:
    field = "name" if keyword in ("maxLength", "pattern") else "heartbeat_s"

    def tighten(s: dict[str, Any]) -> None:
        s["$defs"]["Config"]["properties"][field][keyword] = new_value

    (violation,) = check_compatible(OLD, evolve(tighten))
    assert violation.path == f"$.config.{field}"
    assert violation.message.startswith(f"{keyword} ")
    assert "older records may not satisfy it" in violation.message


def test_a_changed_format_is_breaking() -> None:
    new = evolve(lambda s: s["properties"]["at"].update(format="date"))
    assert messages(new) == ['$.at: format changed from "date-time" to "date"']


def test_forbidding_additional_fields_is_breaking() -> None:
    new = evolve(lambda s: s["$defs"]["Config"].update(additionalProperties=False))
    assert [v.path for v in check_compatible(OLD, new)] == ["$.config"]


def test_a_removed_object_alternative_is_breaking() -> None:
    def shapes(*titles: str) -> dict[str, Any]:
        alts = [{**record(x={"type": "string"}), "title": t} for t in titles]
        return record(payload={"anyOf": alts})

    [violation] = check_compatible(shapes("Uplink", "Join"), shapes("Uplink"))
    assert violation.path == "$.payload"
    assert "'Join' removed" in violation.message


# --- not breaking -----------------------------------------------------------------------


def test_a_new_optional_field_is_compatible() -> None:
    new = evolve(lambda s: s["properties"].update(archived_by=NULLABLE_STRING))
    assert check_compatible(OLD, new) == []


def test_a_new_optional_field_in_a_nested_model_is_compatible() -> None:
    def add(s: dict[str, Any]) -> None:
        s["$defs"]["Config"]["properties"]["debounce_s"] = {"type": "number", "default": 0.0}

    assert check_compatible(OLD, evolve(add)) == []


def test_loosened_bounds_are_compatible() -> None:
    def widen(s: dict[str, Any]) -> None:
        config = s["$defs"]["Config"]["properties"]
        config["name"]["maxLength"] = 200
        config["heartbeat_s"]["minimum"] = 1
        config["heartbeat_s"].pop("maximum")

    assert check_compatible(OLD, evolve(widen)) == []


def test_a_dropped_pattern_is_compatible() -> None:
    old = evolve(lambda s: s["$defs"]["Config"]["properties"]["name"].update(pattern="^[a-z]+$"))
    assert check_compatible(old, OLD) == []


def test_documentation_and_def_names_are_not_part_of_the_contract() -> None:
    def redocument(s: dict[str, Any]) -> None:
        s["$defs"]["SpaceConfig"] = s["$defs"].pop("Config")
        s["properties"]["config"] = {"$ref": "#/$defs/SpaceConfig", "description": "Tuning."}
        s["properties"]["reason"]["default"] = "manual"
        s["properties"]["at"]["title"] = "Occurred at"
        s["description"] = "A bay was registered."

    assert check_compatible(OLD, evolve(redocument)) == []


def test_a_recursive_schema_is_compared_without_looping() -> None:
    tree = {
        "$defs": {
            "Node": record(
                name={"type": "string"},
                children={"type": "array", "items": {"$ref": "#/$defs/Node"}},
            )
        },
        "$ref": "#/$defs/Node",
    }
    renamed = copy.deepcopy(tree)
    renamed["$defs"]["Node"]["properties"]["name"] = {"type": "integer"}
    assert check_compatible(tree, tree) == []
    assert [str(v) for v in check_compatible(tree, renamed)] == [
        "$.name: type changed from string to integer"
    ]


def test_a_reference_outside_the_document_is_refused() -> None:
    with pytest.raises(SchemaError, match="only local"):
        check_compatible(
            record(x={"type": "string"}), record(x={"$ref": "https://example.com/x.json"})
        )
