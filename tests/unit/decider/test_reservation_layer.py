"""The reservation layer: confirm or reject, reserved-soon, start, check-in, no-show, end."""

from __future__ import annotations

from datetime import timedelta

from parkstream.domain.commands import SpaceConfig
from parkstream.domain.states import Layer, SpaceState

from .bay import Bay, frames, states, types

H = timedelta(hours=1)
M = timedelta(minutes=1)


def test_a_reservation_in_the_future_is_confirmed_and_changes_nothing_yet() -> None:
    bay = Bay().ready()
    events = bay.reserve("r1", 2 * H, H)
    assert types(events) == ["reservation.confirmed"]
    assert events[0].data.grace_s == 900  # type: ignore[attr-defined]
    assert bay.state.state == SpaceState.FREE


def test_an_overlapping_reservation_is_rejected_naming_the_conflict() -> None:
    bay = Bay().ready()
    bay.reserve("r1", 2 * H, 2 * H)
    events = bay.reserve("r2", 3 * H, H)
    assert types(events) == ["reservation.rejected"]
    assert events[0].data.reason == "overlap"  # type: ignore[attr-defined]
    assert events[0].data.conflicting_reservation_id == "r1"  # type: ignore[attr-defined]


def test_back_to_back_reservations_do_not_overlap() -> None:
    bay = Bay().ready()
    bay.reserve("r1", 2 * H, H)
    assert types(bay.reserve("r2", 3 * H, H)) == ["reservation.confirmed"]


def test_a_repeated_request_id_is_idempotent() -> None:
    bay = Bay().ready()
    bay.reserve("r1", 2 * H, H, request="k-1")
    assert bay.reserve("r1", 2 * H, H, request="k-1") == []
    assert bay.reserve("r9", 5 * H, H, request="k-1") == []
    assert [r.reservation_id for r in bay.state.reservations] == ["r1"]


def test_a_reservation_id_cannot_be_reused_by_another_request() -> None:
    bay = Bay().ready()
    bay.reserve("r1", 2 * H, H, request="k-1")
    events = bay.reserve("r1", 8 * H, H, request="k-2")
    assert events[0].data.reason == "duplicate_id"  # type: ignore[attr-defined]


def test_reservations_longer_than_the_maximum_are_rejected() -> None:
    bay = Bay().ready()
    events = bay.reserve("r1", H, 25 * H)
    assert events[0].data.reason == "too_long"  # type: ignore[attr-defined]


def test_reservations_that_end_before_they_start_or_in_the_past_are_rejected() -> None:
    bay = Bay().ready()
    assert bay.reserve("r1", H, -M)[0].data.reason == "ends_before_start"  # type: ignore[attr-defined]
    assert bay.reserve("r2", -2 * H, H)[0].data.reason == "ends_in_past"  # type: ignore[attr-defined]


def test_the_bay_shows_reserved_soon_before_the_start_then_reserved() -> None:
    bay = Bay().ready()
    bay.reserve("r1", H, H)
    soon = bay.at(minutes=45).tick()
    assert states(soon) == [(SpaceState.FREE, SpaceState.RESERVED_SOON)]
    assert frames(soon) == ["ff00ff0a0a"]  # yellow, blinking: [R, B, G, on, off]
    bay.txack_pending()
    start = bay.at(minutes=15).tick()
    assert types(start)[:2] == ["reservation.started", "space.state_changed"]
    assert states(start) == [(SpaceState.RESERVED_SOON, SpaceState.RESERVED)]
    assert start[1].data.explanation.layer == Layer.RESERVATION  # type: ignore[attr-defined]
    assert frames(start) == ["ff0032ff00"]  # the tuned orange FF3200 as [R, B, G, on, off]


def test_a_car_arriving_during_the_reservation_checks_it_in() -> None:
    bay = Bay().ready(light=False)
    bay.reserve("r1", H, 2 * H)
    bay.at(hours=1, minutes=5).tick()
    events = bay.at(minutes=1).sensor(True)
    assert types(events) == [
        "space.sensor_reading_accepted",
        "reservation.fulfilled",
        "space.state_changed",
    ]
    assert states(events) == [(SpaceState.RESERVED, SpaceState.OCCUPIED)]
    assert events[2].data.explanation.layer == Layer.RESERVATION  # type: ignore[attr-defined]


def test_a_car_arriving_just_before_the_start_checks_in_at_the_start() -> None:
    bay = Bay().ready(light=False)
    bay.reserve("r1", H, 2 * H)
    bay.at(minutes=55).sensor(True)
    events = bay.at(minutes=5).tick()
    assert types(events) == ["reservation.started", "reservation.fulfilled"]
    assert bay.state.state == SpaceState.OCCUPIED


def test_no_car_by_the_end_of_grace_is_a_no_show_and_releases_the_bay() -> None:
    bay = Bay().ready(light=False)
    bay.reserve("r1", H, 2 * H, grace_s=600)
    events = bay.at(hours=1, minutes=11).tick()
    assert types(events) == [
        "space.state_changed",
        "reservation.started",
        "space.state_changed",
        "reservation.no_show",
        "space.state_changed",
    ]
    assert states(events)[-1] == (SpaceState.RESERVED, SpaceState.FREE)
    assert events[3].occurred_at == bay.now - timedelta(minutes=1)
    assert bay.state.reservations == ()


def test_a_vehicle_parked_before_the_window_does_not_check_in_the_reservation() -> None:
    bay = Bay().ready(light=False)
    bay.sensor(True)
    bay.reserve("r1", 2 * H, 2 * H, grace_s=600)
    events = bay.at(hours=2, minutes=1).tick()
    assert types(events) == ["reservation.started"]
    assert bay.state.state == SpaceState.OCCUPIED
    assert "earlier vehicle" in (
        bay.state
        and __import__("parkstream.domain.decider", fromlist=["explain"])
        .explain(bay.state, bay.now)
        .summary
    )
    no_show = bay.at(minutes=10).tick()
    assert "reservation.no_show" in types(no_show)


def test_a_checked_in_car_leaving_completes_the_reservation() -> None:
    bay = Bay().ready(light=False)
    bay.reserve("r1", H, 2 * H)
    bay.at(hours=1, minutes=1).sensor(True)
    events = bay.at(minutes=30).sensor(False)
    assert types(events)[:2] == ["space.sensor_reading_accepted", "reservation.completed"]
    assert events[1].data.reason == "departed"  # type: ignore[attr-defined]
    assert bay.state.state == SpaceState.FREE


def test_a_checked_in_reservation_completes_at_its_end_and_the_sensor_rules_again() -> None:
    bay = Bay().ready(light=False)
    bay.reserve("r1", H, 2 * H)
    bay.at(hours=1, minutes=1).sensor(True)
    events = bay.at(hours=2).tick()
    assert types(events)[0] == "reservation.completed"
    assert events[0].data.reason == "ended"  # type: ignore[attr-defined]
    assert bay.state.state == SpaceState.OCCUPIED
    assert bay.state.reservations == ()


def test_cancelling_a_reservation_in_force_releases_the_bay() -> None:
    bay = Bay().ready(light=False)
    bay.reserve("r1", M, 2 * H)
    bay.at(minutes=2).tick()
    events = bay.cancel("r1")
    assert types(events) == ["reservation.cancelled", "space.state_changed"]
    assert states(events) == [(SpaceState.RESERVED, SpaceState.FREE)]


def test_cancelling_an_unknown_reservation_is_rejected() -> None:
    bay = Bay().ready()
    events = bay.cancel("nope")
    assert types(events) == ["space.command_rejected"]
    assert events[0].data.reason == "unknown_reservation"  # type: ignore[attr-defined]


def test_a_reservation_that_already_began_starts_at_once() -> None:
    bay = Bay().ready(light=False)
    events = bay.reserve("r1", -5 * M, H)
    assert types(events)[:3] == [
        "reservation.confirmed",
        "reservation.started",
        "space.state_changed",
    ]
    assert bay.state.state == SpaceState.RESERVED


def test_reserved_soon_window_is_configurable_per_bay() -> None:
    bay = Bay(config=SpaceConfig(reserved_soon_s=0)).ready(light=False)
    bay.reserve("r1", H, H)
    assert bay.at(minutes=59).tick() == []
