"""RFC 3339 timestamps to exact nanoseconds (fromisoformat would truncate them)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkstream.ingest.rfc3339 import Instant, parse_rfc3339

BASE_S = 1_784_801_742  # 2026-07-23T10:15:42Z


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-07-23T10:15:42+00:00", BASE_S * 10**9),
        ("2026-07-23T10:15:42.123+00:00", BASE_S * 10**9 + 123_000_000),
        ("2026-07-23T10:15:42.123456+00:00", BASE_S * 10**9 + 123_456_000),
        ("2026-07-23T10:15:42.123456789+00:00", BASE_S * 10**9 + 123_456_789),
        ("2026-07-23T10:15:42.123456789Z", BASE_S * 10**9 + 123_456_789),
        ("2026-07-23t10:15:42.5z", BASE_S * 10**9 + 500_000_000),
        ("2026-07-23T12:15:42.000000001+02:00", BASE_S * 10**9 + 1),
        ("2026-07-23T05:45:42-04:30", BASE_S * 10**9),
    ],
)
def test_chirpstack_and_protobuf_forms_parse_to_exact_nanoseconds(text: str, ns: int) -> None:
    assert parse_rfc3339(text).ns == ns


def test_the_datetime_keeps_microseconds_in_utc() -> None:
    instant = parse_rfc3339("2026-07-23T12:15:42.123456789+02:00")
    assert instant.at == datetime(2026, 7, 23, 10, 15, 42, 123456, tzinfo=UTC)


def test_times_before_the_epoch_floor_to_the_microsecond() -> None:
    instant = parse_rfc3339("1969-12-31T23:59:59.999999999Z")
    assert instant.ns == -1
    assert instant.at == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-07-23T10:15:42",  # no offset
        "2026-07-23 10:15",
        "2026-02-30T10:15:42Z",  # no such day
        "2026-07-23T24:00:00Z",
        "2026-07-23T10:15:42.1234567890Z",  # ten fractional digits
        "2026-07-23T10:15:42+24:00",
        "２０２６-07-23T10:15:42Z",  # full-width digits
        "",
        "0000-01-01T00:00:00Z",
    ],
)
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|day|hour|offset|range|year"):
        parse_rfc3339(text)


def test_an_instant_from_a_naive_datetime_is_taken_as_utc() -> None:
    naive = Instant.from_datetime(datetime(2026, 7, 23, 10, 15, 42))
    aware = Instant.from_datetime(datetime(2026, 7, 23, 10, 15, 42, tzinfo=UTC))
    assert naive == aware
    assert aware.ns == BASE_S * 10**9


@given(ns=st.integers(min_value=-(10**18), max_value=4 * 10**18))
def test_formatting_nanoseconds_and_parsing_them_back_is_the_identity(ns: int) -> None:
    seconds, nanos = divmod(ns, 10**9)
    whole = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert parse_rfc3339(f"{whole}.{nanos:09d}+00:00").ns == ns


@given(
    ns=st.integers(min_value=-(10**18), max_value=4 * 10**18),
    offset_min=st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
    digits=st.sampled_from([0, 3, 6, 9]),
)
def test_any_offset_and_precision_give_the_instant_and_its_utc_datetime(
    ns: int, offset_min: int, digits: int
) -> None:
    ns -= ns % 10 ** (9 - digits)  # what `digits` fractional digits can hold
    seconds, nanos = divmod(ns, 10**9)
    local = datetime.fromtimestamp(seconds + offset_min * 60, tz=UTC)
    sign, minutes = ("-" if offset_min < 0 else "+"), abs(offset_min)
    fraction = f".{nanos:09d}"[: digits + 1] if digits else ""
    text = f"{local:%Y-%m-%dT%H:%M:%S}{fraction}{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    instant = parse_rfc3339(text)
    assert instant == Instant.from_ns(ns)
    assert instant.at.tzinfo is UTC
