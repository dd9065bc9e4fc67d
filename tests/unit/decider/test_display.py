"""The light: requested only when it would show something else, confirmed, resent, reconciled."""

from __future__ import annotations

from parkstream.domain import commands as cmd
from parkstream.domain.decider import decide_and_evolve, downlink_for
from parkstream.domain.display import DisplayPolicy, DisplayStyle
from parkstream.domain.space_events import DisplayChangeRequested
from parkstream.domain.states import SpaceState

from .bay import LIGHT, Bay, frames, types


def test_assigning_a_light_sends_the_current_colour() -> None:
    bay = Bay()
    bay.register()
    events = bay.assign("display", "20:20:20:41:00:C3:0A:01")
    assert types(events) == ["space.device_assigned", "display.change_requested"]
    request = events[1]
    assert isinstance(request, DisplayChangeRequested)
    assert request.data.dev_eui == LIGHT
    assert request.data.f_port == 15
    assert request.data.frame_hex == "404040ff00"
    assert request.data.reason == "display_assigned"


def test_a_txack_confirms_the_pending_frame() -> None:
    bay = Bay()
    bay.register()
    bay.assign("display", LIGHT)
    events = bay.txack_pending()
    assert types(events) == ["display.change_confirmed"]
    assert events[0].data.evidence == "txack"  # type: ignore[attr-defined]
    assert bay.state.display.confirmed_hex == "404040ff00"
    assert bay.state.display.pending_command_id is None


def test_a_txack_of_another_command_is_not_a_confirmation() -> None:
    bay = Bay().ready()
    bay.at(minutes=1).sensor(True)
    assert bay.txack("some-other-id") == []
    assert bay.state.display.pending_command_id is not None


def test_no_downlink_when_the_light_already_shows_the_colour() -> None:
    bay = Bay().ready()
    bay.at(minutes=1).sensor(True)
    bay.txack_pending()
    assert frames(bay.at(minutes=1).sensor(True)) == []


def test_a_missing_txack_is_resent_with_a_bounded_backoff() -> None:
    bay = Bay(config=cmd.SpaceConfig(display_resend_s=60, display_resend_max_s=200)).ready()
    bay.at(minutes=1).sensor(True)
    first = bay.state.display.pending_command_id
    resend = bay.at(seconds=60).tick()
    assert types(resend) == ["display.resend_scheduled", "display.change_requested"]
    assert resend[0].data.reason == "no_txack"  # type: ignore[attr-defined]
    assert resend[1].data.attempt == 2  # type: ignore[attr-defined]
    assert resend[1].data.command_id != first  # type: ignore[attr-defined]
    assert bay.at(seconds=119).tick() == []
    third = bay.at(seconds=1).tick()
    assert third[1].data.attempt == 3  # type: ignore[attr-defined]
    assert bay.state.display.resend_due_at == bay.now.replace() + (
        third[1].occurred_at - bay.now
    ) + __import__("datetime").timedelta(seconds=200)
    bay.txack_pending()
    assert bay.state.display.confirmed_hex == "ff0000ff00"


def test_a_negative_ack_or_a_dropped_downlink_schedules_a_resend() -> None:
    bay = Bay().ready()
    bay.at(minutes=1).sensor(True)
    pending = bay.state.display.pending_command_id
    assert pending is not None
    events = bay.ack(pending, acknowledged=False)
    assert types(events) == ["display.resend_scheduled"]
    assert events[0].data.reason == "nack"  # type: ignore[attr-defined]
    due = events[0].data.due_at  # type: ignore[attr-defined]
    resend = bay.at(seconds=(due - bay.now).total_seconds()).tick()
    assert types(resend) == ["display.change_requested"]
    assert resend[0].data.reason == "resend"  # type: ignore[attr-defined]


def test_a_rejoined_light_gets_its_colour_again() -> None:
    bay = Bay().ready()
    events = bay.at(minutes=5).join()
    assert types(events) == ["display.change_requested"]
    assert events[0].data.reason == "rejoin"  # type: ignore[attr-defined]
    assert events[0].data.frame_hex == "0000ffff00"  # type: ignore[attr-defined]
    assert bay.state.display.confirmed_hex is None


def test_a_status_uplink_showing_the_wanted_colour_confirms_it() -> None:
    bay = Bay().ready()
    events = bay.at(minutes=5).light_status("00FF00")
    assert types(events) == ["display.change_confirmed"]
    assert events[0].data.evidence == "status"  # type: ignore[attr-defined]
    assert bay.at(minutes=30).light_status("00FF00") == []


def test_a_status_uplink_showing_a_wrong_colour_is_corrected() -> None:
    bay = Bay().ready()
    events = bay.at(minutes=5).light_status("FF0000")
    assert types(events) == ["display.change_requested"]
    assert events[0].data.reason == "mismatch"  # type: ignore[attr-defined]
    assert events[0].data.frame_hex == "0000ffff00"  # type: ignore[attr-defined]


def test_the_tenants_display_policy_chooses_the_colour() -> None:
    bay = Bay().ready()
    policy = DisplayPolicy(version=2, styles={SpaceState.FREE: DisplayStyle(colour="00FFFF")})
    events = bay.command(cmd.SetDisplayPolicy, cmd.SetDisplayPolicyData(policy=policy))
    assert types(events) == ["display.policy_set", "display.change_requested"]
    assert frames(events) == ["00ffffff00"]
    assert bay.command(cmd.SetDisplayPolicy, cmd.SetDisplayPolicyData(policy=policy)) == []


def test_a_requested_change_becomes_a_chirpstack_downlink_record() -> None:
    bay = Bay()
    bay.register()
    request = bay.assign("display", LIGHT)[1]
    assert isinstance(request, DisplayChangeRequested)
    downlink = downlink_for(request, bay.state)
    assert downlink.dev_eui == LIGHT
    assert downlink.data.command_id == request.data.command_id
    assert downlink.data.f_port == 15
    assert downlink.data.data_b64 == "QEBA/wA="
    assert downlink.causation_id == request.event_id
    assert downlink.data.expires_at is not None
    assert downlink.data.expires_at > request.occurred_at


def test_deciding_the_same_input_twice_emits_nothing_the_second_time() -> None:
    bay = Bay().ready()
    bay.at(minutes=1)
    from parkstream.domain import device_events as dev
    from parkstream.domain.envelope import Source

    uplink = dev.UplinkObserved(
        event_id="dup",
        dev_eui=bay.state.sensor.dev_eui or "",
        occurred_at=bay.now,
        recorded_at=bay.now,
        source=Source(kind="mqtt"),
        data=dev.UplinkData(
            device=dev.DeviceInfo(),
            f_port=1,
            data_b64="AQ==",
            reading=dev.Reading(decoder="x", kind="parking_status", occupied=True),
        ),
    )
    state, first = decide_and_evolve(bay.state, uplink, bay.now)
    assert first
    again, second = decide_and_evolve(state, uplink, bay.now)
    assert second == []
    assert again == state
