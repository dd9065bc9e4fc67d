"""The activity projection: rollups are exact whatever the batches, and repeats add nothing."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from parkstream.domain.states import SpaceState
from parkstream.projector.activity import ACTUATIONS, plan
from parkstream.projector.records import Event

from .helpers import nonzero, read, recompute, run_activity
from .lot import Lot, scripted

EVENTS: list[Event] = read(scripted(bays=4, hours=48).events)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, len(EVENTS) - 1), max_size=6))
def test_rollups_equal_a_recomputation_wherever_the_batches_end(cuts: list[int]) -> None:
    edges = [0, *sorted(set(cuts)), len(EVENTS)]
    batches = [EVENTS[a:b] for a, b in itertools.pairwise(edges)]
    _, tally = run_activity(batches)
    expected = recompute(EVENTS)
    assert nonzero(tally.hourly) == nonzero(expected.hourly)
    assert nonzero(tally.daily) == nonzero(expected.daily)


def test_events_applied_twice_change_nothing() -> None:
    once_states, once = run_activity([EVENTS])
    twice_states, twice = run_activity([EVENTS, EVENTS[:100], EVENTS])
    assert twice.hourly == once.hourly
    assert twice.daily == once.daily
    assert twice_states == once_states


def test_the_open_interval_is_the_bays_current_state() -> None:
    lot = Lot()
    lot.add_bay("bay-1", time_zone="Europe/Amsterdam")
    lot.advance(minutes=10).reading("bay-1", True)
    states, tally = run_activity([read(lot.events)])
    bay = states[("t-acme", "bay-1")]
    assert (bay.state, bay.since) == (SpaceState.OCCUPIED, lot.now)
    assert bay.site_id == "site-1"
    assert bay.time_zone == "Europe/Amsterdam"
    assert bay.layer == "sensor"
    assert bay.explanation is not None
    free = sum(cell[0] for cell in tally.hourly.values())
    assert free == 10 * 60 * 1_000_000  # FREE for ten minutes; OCCUPIED still open


def test_a_light_request_and_its_confirmation() -> None:
    lot = Lot()
    lot.add_bay("bay-1")
    states, _ = run_activity([read(lot.events)])
    bay = states[("t-acme", "bay-1")]
    assert bay.desired_command_id == bay.confirmed_command_id is not None
    assert bay.confirmed_evidence == "txack"
    p = plan(read(lot.events))
    ((key, (_at, _, evidence)),) = p.confirmations.items()
    assert key == ("t-acme", bay.desired_command_id)
    assert evidence == "txack"


def test_a_repeated_event_in_one_batch_is_one_actuation() -> None:
    p = plan([*EVENTS[:50], *EVENTS[:50]])
    ids = [row[3] for row in p.actuations.of(ACTUATIONS)]
    assert len(ids) == len(set(ids))


def test_a_late_state_change_never_moves_time_backwards() -> None:
    lot = Lot()
    lot.add_bay("bay-1")
    lot.advance(hours=1).reading("bay-1", True)
    late = read(lot.events)
    last = next(e for e in reversed(late) if e.type == "space.state_changed")
    # A new change dated before the bay's current state began.
    older = replace(last, occurred_at=last.occurred_at - timedelta(hours=2), event_id="late")
    states, tally = run_activity([late, [older]])
    bay = states[("t-acme", "bay-1")]
    assert bay.since is not None
    assert bay.since >= last.occurred_at
    assert all(v >= 0 for cell in tally.hourly.values() for v in cell)


def test_registration_times_are_utc() -> None:
    assert all(e.occurred_at.tzinfo is UTC for e in EVENTS)
    assert EVENTS[0].occurred_at == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_a_confirmation_in_the_batch_of_its_request_is_written_with_the_request() -> None:
    lot = Lot()
    lot.add_bay("bay-1")
    p = plan(read(lot.events))
    (request,) = [r for r in p.actuations.of(ACTUATIONS) if r[4] == "display.change_requested"]
    names = ACTUATIONS.names
    assert request[names.index("confirmed_evidence")] == "txack"
    assert request[names.index("confirmed_at")] is not None
    # Inserted now: nothing left to update. Already there (a repeat): the UPDATE does it.
    assert p.confirmation_rows({request[3]}) == []
    assert len(p.confirmation_rows(set())) == 1
