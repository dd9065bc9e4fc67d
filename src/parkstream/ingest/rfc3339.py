"""RFC 3339 timestamps to integer nanoseconds, without losing the nanoseconds.

ChirpStack writes ``time`` with chrono's ``to_rfc3339()``: a ``+00:00`` offset and
0, 3, 6 or 9 fractional digits; protobuf's JSON form writes ``Z``.
``datetime.fromisoformat`` would truncate to microseconds, so the nanosecond
value is computed here and the ``datetime`` (microseconds, UTC) derived from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_S = 1_000_000_000
_ONE_SECOND = timedelta(seconds=1)

# ASCII digits only: ``\d`` would also match other scripts' digits.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


@dataclass(frozen=True, slots=True)
class Instant:
    """A point in time: exact nanoseconds since the epoch and the UTC datetime (µs)."""

    ns: int
    at: datetime

    @classmethod
    def from_ns(cls, ns: int) -> Instant:
        return cls(ns, EPOCH + timedelta(microseconds=ns // 1000))

    @classmethod
    def from_datetime(cls, value: datetime) -> Instant:
        """From a datetime; a naive one is taken to be UTC."""
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        micros = (aware - EPOCH) // timedelta(microseconds=1)
        return cls(micros * 1000, aware.astimezone(UTC))


def parse_rfc3339(text: str) -> Instant:
    """Parse ``YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)``; raises ValueError otherwise."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text[:64]!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_hour, off_minute = (
        match.groups()
    )
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    # The fields as if in UTC (this validates the date), then shifted by the offset.
    at = datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        nanos // 1000,
        tzinfo=UTC,
    )
    offset_s = 0
    if not zulu:
        hours, minutes = int(off_hour), int(off_minute)
        if hours > 23 or minutes > 59:
            raise ValueError(f"bad UTC offset in {text[:64]!r}")
        offset_s = (hours * 3600 + minutes * 60) * (-1 if sign == "-" else 1)
    try:
        if offset_s:
            at -= timedelta(seconds=offset_s)
    except OverflowError as exc:
        raise ValueError(f"timestamp out of range: {text[:64]!r}") from exc
    seconds = (at - EPOCH) // _ONE_SECOND
    return Instant(seconds * _NS_PER_S + nanos, at)
