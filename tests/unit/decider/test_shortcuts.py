"""The decider's shortcuts agree with what they stand for, over random bays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given

from parkstream.domain import commands as cmd
from parkstream.domain import decider
from parkstream.domain.effective import any_due, deadlines, next_deadline, state_at, verdict
from parkstream.domain.envelope import Envelope
from parkstream.domain.space import Space

from .bay import Bay
from .test_properties import FAST, config, program, run

OFFSETS = [timedelta(seconds=s) for s in (-3600, -1, 0, 1, 59, 600, 1800, 7200, 86400)]


@FAST
@given(config, program)
def test_state_at_is_the_verdicts_state(cfg: cmd.SpaceConfig, prog: Any) -> None:
    bay = run(cfg, prog)
    for moment in (bay.now + offset for offset in OFFSETS):
        assert state_at(bay.state, moment) == verdict(bay.state, moment).state


@FAST
@given(config, program)
def test_any_due_tells_whether_a_deadline_has_come(cfg: cmd.SpaceConfig, prog: Any) -> None:
    bay = run(cfg, prog)
    for moment in (bay.now + offset for offset in OFFSETS):
        expected = any(d.at <= moment for d in deadlines(bay.state))
        assert any_due(bay.state, moment) == expected


@FAST
@given(config, program)
def test_the_next_deadline_is_the_earliest_that_needs_a_tick(
    cfg: cmd.SpaceConfig, prog: Any
) -> None:
    state = run(cfg, prog).state
    every = deadlines(state)
    upcoming = [d.at for d in every if state.clock is None or d.at > state.clock]
    event_due = [d.at for d in every if d.kind != "soon"]
    assert next_deadline(state) == min(upcoming + event_due, default=None)


@FAST
@given(config, program)
def test_emitted_events_are_valid_records_with_the_fields_they_were_given(
    cfg: cmd.SpaceConfig, prog: Any
) -> None:
    for event in run(cfg, prog).history:
        assert type(event).model_validate(event.model_dump()) == event
        assert event.model_fields_set == {
            "event_id",
            "tenant_id",
            "space_id",
            "occurred_at",
            "recorded_at",
            "source",
            "causation_id",
            "correlation_id",
            "data",
        }


def _generic(space: Space, inp: Envelope, now: Any) -> tuple[Space, list[Envelope]]:
    """``decide_and_evolve`` without its shortcut for a repeated reading."""
    if inp.event_id in space.recent_inputs:
        return space, []
    if space.clock is not None and now < space.clock:
        now = space.clock
    return decider._decide_and_evolve(space, inp, now)


class _CheckedBay(Bay):
    """A bay whose every decision is checked against the generic path."""

    def feed(self, inp: Envelope) -> list[Envelope]:
        expected = _generic(self.state, inp, self.now)
        events = super().feed(inp)
        assert (self.state, events) == expected
        assert [e.model_fields_set for e in events] == [e.model_fields_set for e in expected[1]]
        assert self.state.model_fields_set == expected[0].model_fields_set
        return events


@FAST
@given(config, program)
def test_the_repeated_reading_shortcut_decides_as_the_generic_path(
    cfg: cmd.SpaceConfig, prog: Any
) -> None:
    run(cfg, prog, _CheckedBay)


def test_a_repeated_reading_takes_the_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[bool] = []
    shortcut = decider._repeated_reading

    def counted(*args: Any) -> Any:
        result = shortcut(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(decider, "_repeated_reading", counted)
    bay = _CheckedBay(config=cmd.SpaceConfig(debounce_s=0.0)).ready()
    bay.at(seconds=1).sensor(True)  # a change, and a downlink for the light
    bay.txack_pending()
    taken.clear()
    events = bay.at(seconds=1).sensor(True)  # the same reading again
    assert taken == [True]
    assert [e.type for e in events] == ["space.sensor_reading_accepted"]


class _StatesBay(Bay):
    """A bay that keeps every state it passes through."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.seen: list[Space] = []

    def feed(self, inp: Envelope) -> list[Envelope]:
        events = super().feed(inp)
        self.seen.append(self.state)
        return events


@FAST
@given(config, program)
def test_the_sensor_only_look_ahead_agrees_with_the_replay(cfg: cmd.SpaceConfig, prog: Any) -> None:
    bay = run(cfg, prog, _StatesBay)
    assert isinstance(bay, _StatesBay)
    for space in bay.seen:
        if space.reservations or space.override is not None or space.archived:
            continue
        if space.sensor.pending is not None or space.clock is None:
            continue
        for moment in (space.clock + offset for offset in OFFSETS):
            current = state_at(space, moment)
            decided, change = decider._next_change_of_sensor(space, current, moment)
            if not decided:
                continue
            upcoming = [d for d in deadlines(space) if d.at > moment][:8]
            replayed = decider._next_change_replayed(space, current, upcoming)
            assert change == replayed
            if upcoming:
                assert decider._next_change_of_layers(space, current, upcoming) == replayed
            else:
                assert change is None
