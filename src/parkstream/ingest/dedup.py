"""A bounded window of recently seen message keys, to drop MQTT redeliveries.

ChirpStack publishes with QoS 0/1 and reconnects can repeat a message; the
``dedup_key`` of a :class:`ParseResult` identifies it. The window is bounded
both by count (oldest first out) and by age, and is pure: the caller passes the
time (``now``, seconds). Use the wall clock if the window is persisted with
:meth:`DedupWindow.snapshot` / :meth:`DedupWindow.restore` across restarts, since
a monotonic clock restarts with the process.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class DedupWindow:
    """Keys first seen within the last ``max_age_s`` seconds, at most ``max_entries`` of them.

    ``max_age_s=None`` keeps keys until the count bound pushes them out.
    """

    __slots__ = ("_entries", "max_age_s", "max_entries")

    def __init__(self, max_entries: int = 100_000, max_age_s: float | None = 3600.0) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_age_s is not None and max_age_s <= 0:
            raise ValueError("max_age_s must be positive (or None for no age bound)")
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._entries: OrderedDict[str, float] = OrderedDict()

    def seen(self, key: str, now: float) -> bool:
        """True if ``key`` was seen within the window (a repeat); else remember it, False.

        A repeat does not extend the key's life: the window counts from first sight.
        """
        self.expire(now)
        if key in self._entries:
            return True
        self._entries[key] = now
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return False

    def expire(self, now: float) -> None:
        """Forget keys first seen ``max_age_s`` or more seconds before ``now``."""
        if self.max_age_s is None:
            return
        horizon = now - self.max_age_s
        while self._entries:
            key, first_seen = next(iter(self._entries.items()))
            if first_seen > horizon:
                break
            del self._entries[key]

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def snapshot(self) -> list[tuple[str, float]]:
        """``(key, first_seen)`` pairs, oldest first: what :meth:`restore` takes back."""
        return list(self._entries.items())

    def restore(self, entries: Iterable[tuple[str, float]], now: float | None = None) -> None:
        """Replace the window with ``entries`` (sorted by time, bounded, expired at ``now``)."""
        ordered = sorted(entries, key=lambda entry: entry[1])
        self._entries = OrderedDict(ordered[-self.max_entries :])
        if now is not None:
            self.expire(now)
