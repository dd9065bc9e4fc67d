"""The simulated clock: real seconds since the start, times a speed factor, as simulated minutes."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """``speed`` simulated seconds pass per real second (60: a simulated minute per second).

    ``now`` is a monotonic clock in seconds (``time.monotonic`` unless a test gives
    another); the simulated clock starts at 0 minutes when it is created.
    """

    def __init__(self, speed: float, now: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._now = now
        self._t0 = now()

    def elapsed(self) -> float:
        """Simulated minutes since the start."""
        return (self._now() - self._t0) * self.speed / 60

    def real_seconds_until(self, elapsed: float) -> float:
        """Real seconds until the simulated clock reads ``elapsed`` minutes (0 if past)."""
        return max(0.0, (elapsed - self.elapsed()) * 60 / self.speed)
