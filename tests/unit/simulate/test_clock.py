"""The simulated clock runs ``speed`` times faster than real time."""

from __future__ import annotations

import pytest

from parkstream.simulate.clock import SimClock


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sixty_times_faster_is_a_simulated_minute_per_real_second() -> None:
    real = FakeMonotonic()
    clock = SimClock(60, real)
    real.now += 2.5
    assert clock.elapsed() == pytest.approx(2.5)
    assert clock.real_seconds_until(10) == pytest.approx(7.5)
    assert clock.real_seconds_until(1) == 0


def test_the_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SimClock(0)
