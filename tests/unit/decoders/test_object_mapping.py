"""Mapping a ChirpStack-decoded ``object`` to a reading."""

from __future__ import annotations

import pytest

from parkstream.decoders.base import BAD_VALUE, DecodeFailure
from parkstream.decoders.object_mapping import ObjectMapping, ObjectMappingError
from parkstream.domain.device_events import Reading

MAPPING = ObjectMapping()


def read(obj: dict[str, object]) -> Reading:
    result = MAPPING.decode(obj)
    assert isinstance(result, Reading), result
    return result


@pytest.mark.parametrize(
    ("value", "occupied"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (1.0, True),
        (0.0, False),
        ("occupied", True),
        ("OCCUPIED", True),
        ("Busy", True),
        ("true", True),
        ("1", True),
        ("free", False),
        ("Vacant", False),
        ("false", False),
        ("0", False),
        (" empty ", False),
    ],
)
def test_occupancy_values_are_read_case_insensitively(value: object, occupied: bool) -> None:
    assert read({"occupied": value}).occupied is occupied


@pytest.mark.parametrize(
    "field", ["occupied", "status", "state", "occupancy", "parking_status", "carStatus"]
)
def test_each_default_field_name_is_recognised(field: str) -> None:
    reading = read({field: "occupied"})
    assert reading.occupied is True
    assert reading.fields["occupancy_field"] == field


def test_field_names_match_case_insensitively() -> None:
    assert read({"ParkingStatus": 1.0}).occupied is True


def test_fields_are_tried_in_order_and_unrecognised_values_are_skipped() -> None:
    reading = read({"status": "ok", "occupancy": "free"})
    assert reading.occupied is False
    assert reading.fields["occupancy_field"] == "occupancy"


def test_only_unrecognised_occupancy_values_are_a_bad_value_failure() -> None:
    result = MAPPING.decode({"status": 2.0})
    assert isinstance(result, DecodeFailure)
    assert result.reason == BAD_VALUE


def test_battery_and_temperature_are_picked_up_when_plausible() -> None:
    reading = read({"occupied": True, "battery": 3.6, "temperature": 21.5})
    assert (reading.battery_v, reading.temperature_c) == (3.6, 21.5)
    assert read({"occupied": True, "battery": 87.0}).battery_v is None
    assert read({"occupied": True, "batteryLevel": 87.0}).battery_pct == 87.0


def test_an_object_with_only_battery_gives_a_reading_without_occupancy() -> None:
    reading = read({"batteryVoltage": 3.1})
    assert reading.occupied is None
    assert reading.battery_v == 3.1


def test_an_object_with_nothing_known_gives_no_reading() -> None:
    assert MAPPING.decode({"counter": 4.0, "nested": {"x": 1}}) is None


def test_other_scalar_fields_are_kept_and_nested_values_dropped() -> None:
    reading = read({"occupied": True, "counter": 4.0, "label": "A1", "nested": {"x": 1}})
    assert reading.fields["counter"] == 4.0
    assert reading.fields["label"] == "A1"
    assert "nested" not in reading.fields


def test_configured_mapping_uses_its_own_fields_and_words() -> None:
    mapping = ObjectMapping.from_config(
        {"occupancy_fields": ["car"], "true_words": ["ja"], "false_words": ["nee"]}
    )
    assert mapping.decode({"car": "JA"}) == Reading(
        decoder="object",
        kind="object",
        occupied=True,
        fields={"car": "JA", "occupancy_field": "car"},
    )
    result = mapping.decode({"car": "nee"})
    assert isinstance(result, Reading)
    assert result.occupied is False


def test_bad_mapping_config_is_refused() -> None:
    with pytest.raises(ObjectMappingError):
        ObjectMapping.from_config({"occupancy_fields": "occupied"})
    with pytest.raises(ObjectMappingError):
        ObjectMapping.from_config({"colour": []})
