"""The override layer wins over everything but archiving, and can end by itself."""

from __future__ import annotations

from datetime import timedelta

from parkstream.domain import commands as cmd
from parkstream.domain.decider import explain
from parkstream.domain.states import Layer, SpaceState

from .bay import Bay, frames, states, types

H = timedelta(hours=1)


def test_an_override_wins_over_the_sensor() -> None:
    bay = Bay().ready()
    events = bay.override("OUT_OF_ORDER")
    assert types(events) == ["override.set", "space.state_changed", "display.change_requested"]
    assert states(events) == [(SpaceState.FREE, SpaceState.OUT_OF_ORDER)]
    assert frames(events) == ["808000ff00"]  # purple 800080 as [R, B, G, on, off]
    bay.txack_pending()
    assert states(bay.at(minutes=1).sensor(True)) == []


def test_an_override_wins_over_a_reservation() -> None:
    bay = Bay().ready(light=False)
    bay.reserve("r1", timedelta(minutes=-1), H)
    assert bay.state.state == SpaceState.RESERVED
    events = bay.override("MAINTENANCE")
    assert states(events) == [(SpaceState.RESERVED, SpaceState.MAINTENANCE)]


def test_an_override_with_an_end_time_clears_itself_and_says_so_in_advance() -> None:
    bay = Bay().ready(light=False)
    bay.override("BLOCKED", until=2 * H)
    explanation = explain(bay.state, bay.now)
    assert explanation.layer == Layer.OVERRIDE
    assert explanation.next_change is not None
    assert explanation.next_change.reason == "override_ends"
    assert explanation.next_change.to_state == SpaceState.FREE
    assert explanation.next_change.at == bay.now + 2 * H
    events = bay.at(hours=2, minutes=30).tick()
    assert types(events) == ["override.cleared", "space.state_changed"]
    assert events[0].data.reason == "expired"  # type: ignore[attr-defined]
    assert events[1].occurred_at == bay.now - H / 2


def test_clearing_an_override_by_hand_returns_to_the_lower_layers() -> None:
    bay = Bay().ready(light=False)
    bay.sensor(True)
    bay.override("FREE")
    assert bay.state.state == SpaceState.FREE
    events = bay.command(cmd.ClearOverride, cmd.ClearOverrideData(reason="done"))
    assert states(events) == [(SpaceState.FREE, SpaceState.OCCUPIED)]
    assert bay.command(cmd.ClearOverride, cmd.ClearOverrideData()) == []


def test_an_override_ending_in_the_past_is_rejected() -> None:
    bay = Bay().ready()
    events = bay.override("BLOCKED", until=-H)
    assert types(events) == ["space.command_rejected"]
    assert events[0].data.field == "until"  # type: ignore[attr-defined]
