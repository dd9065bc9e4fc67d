"""Choosing a decoder: override, then tag, then profile name, then the object mapping."""

from __future__ import annotations

import pytest

from parkstream.decoders.base import UNKNOWN_DECODER, DecodeFailure
from parkstream.decoders.registry import DecoderConfigError, DecoderRegistry, UplinkFrame
from parkstream.domain.device_events import Reading

EUI = "0101010101010101"


def frame(**changes: object) -> UplinkFrame:
    values: dict[str, object] = {"dev_eui": EUI, "f_port": 1, "payload": b"\x01"}
    values.update(changes)
    return UplinkFrame(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("profile", "decoder"),
    [
        ("Bosch TPS110 EU868", "bosch_tps110"),
        ("bosch parking", "bosch_tps110"),
        ("NPS405-SM", "nwave_nps405"),
        ("Nwave surface", "nwave_nps405"),
        ("TEKZIPARK radar", "tekzitel"),
        ("tbms100", "browan_tbms100"),
        ("Browan motion", "browan_tbms100"),
        ("Kuando Busylight IoT Omega", "kuando"),
        ("busylight", "kuando"),
    ],
)
def test_default_profile_rules_match_case_insensitive_substrings(
    profile: str, decoder: str
) -> None:
    choice = DecoderRegistry.default().choose(frame(device_profile_name=profile))
    assert choice is not None
    assert (choice.name, choice.via) == (decoder, "profile")


def test_an_override_beats_the_tag_and_the_profile() -> None:
    registry = DecoderRegistry.default().with_overrides({"01-01-01-01-01-01-01-01": "tekzitel"})
    choice = registry.choose(
        frame(device_profile_name="Bosch", tags={"parkstream_decoder": "nwave_nps405"})
    )
    assert choice is not None
    assert (choice.name, choice.via) == ("tekzitel", "override")


def test_a_tag_beats_the_profile() -> None:
    choice = DecoderRegistry.default().choose(
        frame(device_profile_name="Bosch", tags={"parkstream_decoder": "Nwave_NPS405"})
    )
    assert choice is not None
    assert (choice.name, choice.via) == ("nwave_nps405", "tag")


def test_the_object_mapping_is_used_only_without_a_binary_decoder() -> None:
    registry = DecoderRegistry.default()
    with_object = frame(device_profile_name="Generic", obj={"occupied": False})
    result = registry.decode(with_object)
    assert isinstance(result, Reading)
    assert (result.decoder, result.occupied) == ("object", False)
    bosch = registry.decode(frame(device_profile_name="Bosch", obj={"occupied": False}))
    assert isinstance(bosch, Reading)
    assert (bosch.decoder, bosch.occupied) == ("bosch_tps110", True)


def test_an_unknown_device_type_has_no_reading_and_no_failure() -> None:
    assert DecoderRegistry.default().decode(frame(device_profile_name="Weather station")) is None


def test_the_tag_none_turns_decoding_off() -> None:
    registry = DecoderRegistry.default()
    assert (
        registry.decode(frame(device_profile_name="Bosch", tags={"parkstream_decoder": "none"}))
        is None
    )


def test_an_unknown_decoder_named_by_a_tag_is_a_failure() -> None:
    result = DecoderRegistry.default().decode(frame(tags={"parkstream_decoder": "acme"}))
    assert isinstance(result, DecodeFailure)
    assert result.reason == UNKNOWN_DECODER


def test_from_config_builds_rules_tag_key_and_overrides() -> None:
    registry = DecoderRegistry.from_config(
        {
            "tag_key": "decoder",
            "overrides": {"0202020202020202": "browan_tbms100"},
            "profile_rules": [{"regex": "^lot-[0-9]+$", "decoder": "nwave_nps405"}],
            "default_profile_rules": False,
            "object_mapping": None,
        }
    )
    by_regex = registry.choose(frame(device_profile_name="LOT-7"))
    assert by_regex is not None
    assert by_regex.name == "nwave_nps405"
    assert registry.choose(frame(device_profile_name="Bosch")) is None
    by_tag = registry.choose(frame(tags={"decoder": "kuando"}))
    assert by_tag is not None
    assert by_tag.name == "kuando"
    assert registry.overrides == {"0202020202020202": "browan_tbms100"}
    assert registry.decode(frame(obj={"occupied": True})) is None


@pytest.mark.parametrize(
    "config",
    [
        {"overrides": {"0101": "kuando"}},
        {"overrides": {EUI: "acme"}},
        {"profile_rules": [{"contains": "x"}]},
        {"profile_rules": [{"decoder": "kuando", "regex": "("}]},
        {"profile_rules": [{"decoder": "acme", "contains": "x"}]},
        {"tag_key": ""},
        {"colour": "blue"},
        {"object_mapping": {"occupancy_fields": 3}},
    ],
)
def test_bad_config_is_refused_with_a_config_error(config: dict[str, object]) -> None:
    with pytest.raises(DecoderConfigError):
        DecoderRegistry.from_config(config)


def test_the_registry_is_immutable() -> None:
    registry = DecoderRegistry.default()
    with pytest.raises(AttributeError):
        registry.tag_key = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        registry.overrides[EUI] = "kuando"  # type: ignore[index]


def test_a_crashing_decoder_becomes_a_failure() -> None:
    def broken(f_port: int, payload: bytes) -> Reading:
        raise RuntimeError("boom")

    registry = DecoderRegistry(decoders={"broken": broken}).with_overrides({EUI: "broken"})
    result = registry.decode(frame())
    assert isinstance(result, DecodeFailure)
    assert result.reason == "decoder_crashed"
