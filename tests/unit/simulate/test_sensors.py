"""Every vendor's frames decode, with parkstream's decoders, to the intended occupancy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkstream.decoders.base import DecodeFailure
from parkstream.decoders.nwave_nps405 import expand_duration
from parkstream.decoders.registry import DecoderRegistry, UplinkFrame
from parkstream.domain.device_events import Reading
from parkstream.simulate.sensors import (
    VENDORS,
    Frame,
    Report,
    Vendor,
    bosch_heartbeat,
    browan_status,
    compress_duration,
    nwave_heartbeat,
    nwave_status,
    tekzitel_heartbeat,
    tekzitel_startup,
)

REGISTRY = DecoderRegistry.default()


def decode(vendor: Vendor, f_port: int, payload: bytes) -> Reading:
    frame = UplinkFrame(
        "a000000100000001", f_port, payload, device_profile_name=vendor.profile_name
    )
    choice = REGISTRY.choose(frame)
    assert choice is not None
    assert (choice.name, choice.via) == (vendor.key, "profile")
    result = REGISTRY.decode(frame)
    assert isinstance(result, Reading), result
    return result


@pytest.mark.parametrize("vendor", list(VENDORS.values()), ids=list(VENDORS))
@pytest.mark.parametrize("kind", ["status", "heartbeat", "startup"])
@given(
    occupied=st.booleans(),
    minutes=st.floats(min_value=0, max_value=5000),
    temperature=st.floats(min_value=-30, max_value=60),
    parking_id=st.integers(0, 1000),
    count=st.integers(0, 2**30),
)
def test_every_frame_decodes_to_the_intended_occupancy(
    vendor: Vendor,
    kind: str,
    occupied: bool,
    minutes: float,
    temperature: float,
    parking_id: int,
    count: int,
) -> None:
    report = Report(occupied, minutes, temperature, parking_id, count)
    frame = getattr(vendor, kind)(report)
    assert decode(vendor, frame.f_port, frame.payload).occupied is occupied


def test_vendor_heartbeats_are_the_vendor_heartbeat_frames() -> None:
    report = Report(occupied=True, temperature_c=-4)
    bosch = decode(VENDORS["bosch_tps110"], *_frame(bosch_heartbeat(report)))
    assert (bosch.kind, bosch.temperature_c) == ("heartbeat", -4.0)
    nwave = decode(VENDORS["nwave_nps405"], *_frame(nwave_heartbeat(report)))
    assert (nwave.kind, nwave.temperature_c, nwave.battery_v) == ("heartbeat", -4.0, 3.3)
    tekzi = decode(VENDORS["tekzitel"], *_frame(tekzitel_heartbeat(report)))
    assert tekzi.fields["keep_alive"] is True
    assert decode(VENDORS["tekzitel"], *_frame(tekzitel_startup(report))).fields["reset"] is True


def test_startup_frames_are_read_as_startup() -> None:
    report = Report(occupied=False)
    for key in ("bosch_tps110", "nwave_nps405"):
        vendor = VENDORS[key]
        reading = decode(vendor, *_frame(vendor.startup(report)))
        assert reading.kind == "startup"
        assert reading.fields["reset_cause"] in ("power on", "power_on")


def test_browan_carries_time_count_battery_and_temperature() -> None:
    reading = decode(
        VENDORS["browan_tbms100"],
        *_frame(browan_status(Report(True, 75.4, 21.2, 0, 0x123456))),
    )
    assert reading.fields == {"time": 75, "count": 0x123456}
    assert (reading.battery_v, reading.temperature_c) == (3.6, 21.0)


@given(st.floats(min_value=0, max_value=659))
def test_nwave_durations_expand_within_the_codec_error(minutes: float) -> None:
    expanded, error, overflow = expand_duration(compress_duration(minutes))
    assert not overflow
    assert error is not None
    assert abs(expanded - round(minutes)) <= error + 0.5


def test_nwave_status_carries_the_previous_state_duration() -> None:
    reading = decode(VENDORS["nwave_nps405"], *_frame(nwave_status(Report(True, 74))))
    assert reading.fields["previous_state_duration"] == 74
    assert nwave_status(Report(True, 74)).payload == b"\x95"  # the codec's own example
    assert compress_duration(10_000) == 127


def test_a_wrong_port_is_not_silently_read() -> None:
    frame = browan_status(Report(True))
    assert isinstance(
        REGISTRY.decode(UplinkFrame("a0", 1, frame.payload, "Browan TBMS100")), DecodeFailure
    )


def _frame(frame: Frame) -> tuple[int, bytes]:
    return frame.f_port, frame.payload
