"""The sensor layer: debounced readings, silence, recovery, and what is ignored."""

from __future__ import annotations

from parkstream.domain.commands import SpaceConfig
from parkstream.domain.states import Layer, SpaceState

from .bay import LIGHT, SENSOR, Bay, frames, states, types


def test_a_registered_bay_without_a_sensor_is_unknown() -> None:
    bay = Bay()
    events = bay.register()
    assert types(events) == ["space.registered", "space.state_changed"]
    assert states(events) == [(None, SpaceState.UNKNOWN)]
    assert events[1].data.explanation.layer == Layer.UNKNOWN  # type: ignore[attr-defined]


def test_the_first_reading_decides_the_state_at_once() -> None:
    bay = Bay()
    bay.register()
    bay.assign("sensor", SENSOR)
    events = bay.sensor(True)
    assert types(events) == ["space.sensor_reading_accepted", "space.state_changed"]
    assert states(events) == [(SpaceState.UNKNOWN, SpaceState.OCCUPIED)]
    explanation = events[1].data.explanation  # type: ignore[attr-defined]
    assert explanation.layer == Layer.SENSOR
    assert explanation.cause_event_ids == (bay.history[-2].causation_id,)


def test_a_car_arriving_and_leaving_flips_the_bay_and_its_light() -> None:
    bay = Bay().ready()
    arrive = bay.at(minutes=1).sensor(True)
    assert states(arrive) == [(SpaceState.FREE, SpaceState.OCCUPIED)]
    assert frames(arrive) == ["ff0000ff00"]
    bay.txack_pending()
    leave = bay.at(minutes=30).sensor(False)
    assert states(leave) == [(SpaceState.OCCUPIED, SpaceState.FREE)]
    assert frames(leave) == ["0000ffff00"]


def test_a_repeated_reading_changes_nothing_but_is_recorded() -> None:
    bay = Bay().ready()
    events = bay.at(minutes=1).sensor(False)
    assert types(events) == ["space.sensor_reading_accepted"]
    assert events[0].data.settled is False  # type: ignore[attr-defined]


def test_a_frame_without_occupancy_is_ignored_but_proves_the_sensor_alive() -> None:
    bay = Bay().ready()
    bay.at(hours=2)
    events = bay.sensor(None)
    assert types(events) == ["space.sensor_reading_ignored"]
    assert events[0].data.reason == "no_occupancy"  # type: ignore[attr-defined]
    assert bay.state.sensor.last_heard_at == bay.now


def test_a_reading_older_than_the_last_one_is_ignored_as_stale() -> None:
    bay = Bay().ready()
    late = bay.history  # noqa: F841 - readability: the next uplink is dated in the past
    bay.at(minutes=10).sensor(True)
    from datetime import timedelta

    from parkstream.domain import device_events as dev
    from parkstream.domain.envelope import Source

    old = dev.UplinkObserved(
        event_id="old-uplink",
        dev_eui=SENSOR,
        occurred_at=bay.now - timedelta(minutes=5),
        recorded_at=bay.now,
        source=Source(kind="mqtt"),
        data=dev.UplinkData(
            device=dev.DeviceInfo(),
            f_port=1,
            data_b64="AA==",
            reading=dev.Reading(decoder="x", kind="parking_status", occupied=False),
        ),
    )
    events = bay.feed(old)
    assert types(events) == ["space.sensor_reading_ignored"]
    assert events[0].data.reason == "stale"  # type: ignore[attr-defined]
    assert bay.state.state == SpaceState.OCCUPIED


def test_a_reading_from_a_device_that_is_not_the_bays_sensor_is_not_used() -> None:
    bay = Bay().ready()
    assert bay.at(minutes=1).sensor(True, eui="ffffffffffffffff") == []
    assert bay.state.state == SpaceState.FREE


def test_with_debounce_a_change_waits_and_a_second_agreeing_reading_settles_it() -> None:
    bay = Bay(config=SpaceConfig(debounce_s=10)).ready()
    first = bay.at(minutes=1).sensor(True)
    assert types(first) == ["space.sensor_reading_accepted"]
    assert first[0].data.pending_until == bay.now.replace(second=10)  # type: ignore[attr-defined]
    second = bay.at(seconds=3).sensor(True)
    assert states(second) == [(SpaceState.FREE, SpaceState.OCCUPIED)]


def test_with_debounce_a_held_change_settles_by_itself_when_nothing_contradicts_it() -> None:
    bay = Bay(config=SpaceConfig(debounce_s=10)).ready()
    bay.at(minutes=1).sensor(True)
    assert bay.at(seconds=5).tick() == []
    settled = bay.at(seconds=6).tick()
    assert types(settled)[:2] == ["space.sensor_debounced", "space.state_changed"]
    assert settled[1].occurred_at == bay.now.replace(second=10)


def test_with_debounce_a_flap_is_suppressed() -> None:
    bay = Bay(config=SpaceConfig(debounce_s=10)).ready()
    bay.at(minutes=1).sensor(True)
    back = bay.at(seconds=2).sensor(False)
    assert types(back) == ["space.sensor_reading_accepted"]
    assert bay.at(seconds=30).tick() == []
    assert bay.state.state == SpaceState.FREE


def test_a_sensor_silent_for_k_heartbeats_makes_the_bay_unknown() -> None:
    bay = Bay(config=SpaceConfig(heartbeat_s=600, silence_factor=3)).ready()
    assert bay.at(minutes=29).tick() == []
    events = bay.at(minutes=1).tick()
    assert types(events)[:2] == ["space.sensor_went_silent", "space.state_changed"]
    assert states(events) == [(SpaceState.FREE, SpaceState.UNKNOWN)]
    assert events[1].occurred_at == bay.now
    assert frames(events) == ["404040ff00"]


def test_a_silent_sensor_that_comes_back_is_trusted_again() -> None:
    bay = Bay(config=SpaceConfig(heartbeat_s=600, silence_factor=3)).ready()
    bay.at(hours=1).tick()
    bay.txack_pending()
    events = bay.at(seconds=30).sensor(True)
    assert types(events)[:3] == [
        "space.sensor_recovered",
        "space.sensor_reading_accepted",
        "space.state_changed",
    ]
    assert states(events) == [(SpaceState.UNKNOWN, SpaceState.OCCUPIED)]


def test_unassigning_the_sensor_makes_the_bay_unknown() -> None:
    bay = Bay().ready()
    events = bay.command(
        __import__("parkstream.domain.commands", fromlist=["UnassignDevice"]).UnassignDevice,
        __import__(
            "parkstream.domain.commands", fromlist=["UnassignDeviceData"]
        ).UnassignDeviceData(role="sensor"),
    )
    assert types(events)[:2] == ["space.device_unassigned", "space.state_changed"]
    assert bay.state.state == SpaceState.UNKNOWN
    assert bay.state.display.dev_eui == LIGHT
