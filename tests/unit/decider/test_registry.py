"""Registering, updating, archiving and restoring bays; commands the bay refuses."""

from __future__ import annotations

from datetime import timedelta

from parkstream.domain import commands as cmd
from parkstream.domain.states import Layer, SpaceState

from .bay import LIGHT, SENSOR, Bay, states, types


def test_commands_to_an_unregistered_bay_are_rejected() -> None:
    bay = Bay()
    events = bay.assign("sensor", SENSOR)
    assert types(events) == ["space.command_rejected"]
    assert events[0].data.reason == "not_registered"  # type: ignore[attr-defined]


def test_registering_twice_with_the_same_data_is_a_no_op_and_otherwise_refused() -> None:
    bay = Bay()
    bay.register()
    assert bay.register() == []
    other = bay.command(
        cmd.RegisterSpace, cmd.RegisterSpaceData(site_id="site-2", name="X", code="X1")
    )
    assert other[0].data.reason == "already_registered"  # type: ignore[attr-defined]


def test_updating_a_bay_records_only_real_changes() -> None:
    bay = Bay()
    bay.register()
    events = bay.command(cmd.UpdateSpace, cmd.UpdateSpaceData(name="Bay one"))
    assert types(events) == ["space.updated"]
    assert events[0].data.code == "A1"  # type: ignore[attr-defined]
    assert bay.command(cmd.UpdateSpace, cmd.UpdateSpaceData(name="Bay one")) == []


def test_archiving_with_live_reservations_needs_force_and_cancels_them() -> None:
    bay = Bay().ready()
    bay.reserve("r1", timedelta(hours=1), timedelta(hours=1))
    refused = bay.command(cmd.ArchiveSpace, cmd.ArchiveSpaceData(reason="rebuild"))
    assert refused[0].data.reason == "live_reservations"  # type: ignore[attr-defined]
    events = bay.command(cmd.ArchiveSpace, cmd.ArchiveSpaceData(reason="rebuild", force=True))
    assert types(events)[:3] == ["reservation.cancelled", "space.archived", "space.state_changed"]
    assert states(events) == [(SpaceState.FREE, SpaceState.ARCHIVED)]
    assert bay.state.reservations == ()
    assert events[-1].data.frame_hex == "000000ff00"  # type: ignore[attr-defined]


def test_an_archived_bay_ignores_readings_and_refuses_reservations_until_restored() -> None:
    bay = Bay().ready(light=False)
    bay.command(cmd.ArchiveSpace, cmd.ArchiveSpaceData())
    ignored = bay.at(minutes=1).sensor(True)
    assert ignored[0].data.reason == "archived"  # type: ignore[attr-defined]
    rejected = bay.reserve("r1", timedelta(hours=1), timedelta(hours=1))
    assert rejected[0].data.reason == "archived"  # type: ignore[attr-defined]
    restored = bay.command(cmd.RestoreSpace, cmd.RestoreSpaceData())
    assert types(restored)[0] == "space.restored"
    assert bay.state.state == SpaceState.FREE


def test_a_device_cannot_be_both_sensor_and_light_of_a_bay() -> None:
    bay = Bay().ready(light=False)
    events = bay.assign("display", SENSOR)
    assert events[0].data.reason == "device_has_other_role"  # type: ignore[attr-defined]


def test_replacing_a_sensor_names_the_replaced_device_and_starts_unknown() -> None:
    bay = Bay().ready(light=False)
    events = bay.assign("sensor", "0102030405060708")
    assert events[0].data.replaced_dev_eui == SENSOR  # type: ignore[attr-defined]
    assert bay.state.state == SpaceState.UNKNOWN
    assert bay.state.display.dev_eui is None
    assert LIGHT != SENSOR


def test_a_command_of_another_tenant_is_rejected() -> None:
    bay = Bay().ready()
    wrong = cmd.ClearOverride(
        event_id="x",
        tenant_id="someone-else",
        space_id=bay.state.space_id,
        occurred_at=bay.now,
        recorded_at=bay.now,
        source=__import__("parkstream.domain.envelope", fromlist=["Source"]).Source(kind="api"),
    )
    events = bay.feed(wrong)
    assert events[0].data.reason == "tenant_mismatch"  # type: ignore[attr-defined]
    assert events[0].tenant_id == bay.state.tenant_id


def test_every_state_change_explains_itself() -> None:
    bay = Bay().ready()
    change = bay.at(minutes=1).sensor(True)[1]
    explanation = change.data.explanation  # type: ignore[attr-defined]
    assert explanation.state == SpaceState.OCCUPIED
    assert explanation.layer == Layer.SENSOR
    assert explanation.summary == "The sensor reports the bay occupied."
    assert explanation.since == bay.now
    assert explanation.cause_event_ids
    assert explanation.next_change is not None
    assert explanation.next_change.reason == "sensor_silent"
