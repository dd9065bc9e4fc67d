"""Utilisation rollups: the seconds of each closed state interval, split into buckets.

A bay's state holds from one state change to the next. When the next change arrives,
the interval ``[since, at)`` is closed and its seconds are added to each UTC hour it
touches (per bay) and to each local day it touches in the site's time zone (per site).
Days are cut at the site's local midnights, so a daylight-saving day has 23 or 25 hours.
Arrivals (changes into OCCUPIED) and departures (changes out of it) count where the
change happened. Everything is counted in integer microseconds (written as such and
turned into the tables' exact ``numeric`` seconds in SQL): sums are exact, so the rollups
equal a recomputation from the actuations whatever the batch boundaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOUR = timedelta(hours=1)
ONE_DAY = timedelta(days=1)
OCCUPIED = "OCCUPIED"

# The seconds columns of the rollup tables, and which states count towards each.
BUCKETS: tuple[str, ...] = ("free_s", "occupied_s", "reserved_s", "unknown_s", "unavailable_s")
COUNTS: tuple[str, ...] = ("arrivals", "departures")
STATE_BUCKET: dict[str, int] = {
    "FREE": 0,
    "RESERVED_SOON": 0,
    "OCCUPIED": 1,
    "RESERVED": 2,
    "UNKNOWN": 3,
    "OUT_OF_ORDER": 4,
    "MAINTENANCE": 4,
    "BLOCKED": 4,
    # ARCHIVED: counted nowhere, the bay is out of the lot
}
_ARRIVALS, _DEPARTURES = len(BUCKETS), len(BUCKETS) + 1


@lru_cache(maxsize=256)
def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name``; UTC for an unknown or missing name."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hours(start: datetime, end: datetime) -> Iterator[tuple[datetime, int]]:
    """(UTC hour, microseconds) of ``[start, end)`` in each hour it touches."""
    hour = hour_of(start)
    while hour < end:
        nxt = hour + HOUR
        us = micros(min(end, nxt) - max(start, hour))
        if us > 0:
            yield hour, us
        hour = nxt


@lru_cache(maxsize=8192)
def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local day begins, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def days(start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[tuple[date, int]]:
    """(local date, microseconds) of ``[start, end)`` in each local day it touches."""
    day = local_day(start, tz)
    while True:
        begins = local_midnight(day, tz)
        ends = local_midnight(day + timedelta(days=1), tz)
        if begins >= end:
            return
        us = micros(min(end, ends) - max(start, begins))
        if us > 0:
            yield day, us
        day += timedelta(days=1)


@dataclass
class Tally:
    """Increments of one batch: per (tenant, space, hour) and per (tenant, site, day)."""

    hourly: dict[tuple[str, str, datetime], list[int]] = field(default_factory=dict)
    daily: dict[tuple[str, str, date], list[int]] = field(default_factory=dict)

    def interval(
        self,
        tenant: str,
        space: str,
        site: str | None,
        tz: ZoneInfo,
        state: str,
        start: datetime,
        end: datetime,
    ) -> None:
        """Add ``[start, end)`` spent in ``state``."""
        bucket = STATE_BUCKET.get(state)
        if bucket is None or end <= start:
            return
        hour = hour_of(start)
        if end <= hour + HOUR:  # most intervals: within one hour, one day
            self._hour(tenant, space, hour)[bucket] += micros(end - start)
        else:
            for hour, us in hours(start, end):
                self._hour(tenant, space, hour)[bucket] += us
        if site is None:
            return
        day = local_day(start, tz)
        if end <= local_midnight(day + ONE_DAY, tz):
            self._day(tenant, site, day)[bucket] += micros(end - start)
        else:
            for day, us in days(start, end, tz):
                self._day(tenant, site, day)[bucket] += us

    def change(
        self,
        tenant: str,
        space: str,
        site: str | None,
        tz: ZoneInfo,
        at: datetime,
        from_state: str | None,
        to_state: str,
    ) -> None:
        """Count an arrival or departure at ``at``."""
        if (to_state == OCCUPIED) == (from_state == OCCUPIED):
            return
        which = _ARRIVALS if to_state == OCCUPIED else _DEPARTURES
        self._hour(tenant, space, hour_of(at))[which] += 1
        if site is not None:
            self._day(tenant, site, local_day(at, tz))[which] += 1

    def _hour(self, tenant: str, space: str, hour: datetime) -> list[int]:
        key = (tenant, space, hour)
        cell = self.hourly.get(key)
        if cell is None:
            cell = self.hourly[key] = [0] * (len(BUCKETS) + len(COUNTS))
        return cell

    def _day(self, tenant: str, site: str, day: date) -> list[int]:
        key = (tenant, site, day)
        cell = self.daily.get(key)
        if cell is None:
            cell = self.daily[key] = [0] * (len(BUCKETS) + len(COUNTS))
        return cell
