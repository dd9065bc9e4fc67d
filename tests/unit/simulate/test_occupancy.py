"""The daily occupancy curve and the per-bay arrival/departure schedule."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from parkstream.simulate.occupancy import (
    DAY_MINUTES,
    Change,
    DwellModel,
    bay_schedule,
    target_occupancy,
)


def test_the_curve_is_low_at_night_and_peaks_in_the_morning_and_afternoon() -> None:
    night = [target_occupancy(h * 60) for h in (0, 2, 4)]
    peaks = [target_occupancy(h * 60) for h in (9.5, 11, 14.5, 16)]
    assert max(night) <= 0.1
    assert min(peaks) >= 0.85
    assert target_occupancy(12.5 * 60) < min(peaks)  # the lunch dip


@given(st.floats(min_value=-3 * DAY_MINUTES, max_value=3 * DAY_MINUTES))
def test_the_curve_is_a_share_and_repeats_daily(minute: float) -> None:
    assert 0 <= target_occupancy(minute) <= 1
    assert abs(target_occupancy(minute) - target_occupancy(minute + DAY_MINUTES)) < 1e-9


def test_the_schedule_is_the_same_for_the_same_seed() -> None:
    first = bay_schedule(random.Random("seed-7"), start_minute=420, duration=DAY_MINUTES)
    again = bay_schedule(random.Random("seed-7"), start_minute=420, duration=DAY_MINUTES)
    other = bay_schedule(random.Random("seed-8"), start_minute=420, duration=DAY_MINUTES)
    assert first == again
    assert first != other


@given(st.integers(), st.floats(min_value=0, max_value=DAY_MINUTES))
def test_a_bay_alternates_between_arrivals_and_departures(seed: int, start: float) -> None:
    initial, changes = bay_schedule(random.Random(seed), start_minute=start, duration=2000)
    states = [initial] + [c.occupied for c in changes]
    assert all(a != b for a, b in itertools.pairwise(states))
    times = [c.elapsed for c in changes]
    assert times == sorted(times)
    assert all(0 <= t <= 2000 for t in times)


def test_dwell_times_stay_within_tens_of_minutes_to_hours() -> None:
    model = DwellModel()
    rng = random.Random(3)
    samples = [model.sample(rng) for _ in range(2000)]
    assert min(samples) >= model.min_minutes == 10
    assert max(samples) <= model.max_minutes == 480
    assert 45 < sorted(samples)[1000] < 110  # the median is around an hour


def occupied_share(schedules: list[tuple[bool, list[Change]]], at: float) -> float:
    taken = 0
    for initial, changes in schedules:
        state = initial
        for change in changes:
            if change.elapsed > at:
                break
            state = change.occupied
        taken += state
    return taken / len(schedules)


def test_many_bays_follow_the_curve_from_night_to_the_morning_peak() -> None:
    schedules = [
        bay_schedule(random.Random(f"bay/{i}"), start_minute=0, duration=2 * DAY_MINUTES)
        for i in range(300)
    ]
    night = occupied_share(schedules, DAY_MINUTES + 3 * 60)
    morning = occupied_share(schedules, DAY_MINUTES + 10.5 * 60)
    afternoon = occupied_share(schedules, DAY_MINUTES + 16 * 60)
    assert night < 0.2
    assert morning > 0.75
    assert afternoon > 0.75
