"""Splitting state intervals into UTC hours and local days, daylight saving included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from parkstream.projector.utilization import Tally, days, hours, zone

AMS = zone("Europe/Amsterdam")
H = 3_600_000_000  # an hour in microseconds


def test_an_interval_is_split_at_each_hour() -> None:
    start = datetime(2026, 3, 2, 8, 45, tzinfo=UTC)
    end = datetime(2026, 3, 2, 10, 15, 0, 500, tzinfo=UTC)
    assert list(hours(start, end)) == [
        (datetime(2026, 3, 2, 8, tzinfo=UTC), H // 4),
        (datetime(2026, 3, 2, 9, tzinfo=UTC), H),
        (datetime(2026, 3, 2, 10, tzinfo=UTC), H // 4 + 500),
    ]


def test_the_spring_forward_day_in_amsterdam_has_23_hours() -> None:
    start = datetime(2026, 3, 27, 12, tzinfo=UTC)
    end = datetime(2026, 4, 1, tzinfo=UTC)
    split = dict(days(start, end, AMS))
    assert split[date(2026, 3, 28)] == 24 * H
    assert split[date(2026, 3, 29)] == 23 * H
    assert split[date(2026, 3, 30)] == 24 * H


def test_the_fall_back_day_in_amsterdam_has_25_hours() -> None:
    start = datetime(2026, 10, 23, tzinfo=UTC)
    end = datetime(2026, 10, 28, tzinfo=UTC)
    split = dict(days(start, end, AMS))
    assert split[date(2026, 10, 24)] == 24 * H
    assert split[date(2026, 10, 25)] == 25 * H
    assert split[date(2026, 10, 26)] == 24 * H
    assert sum(split.values()) == 5 * 24 * H


def test_local_days_start_at_local_midnight() -> None:
    # 23:30 UTC on 1 March is 00:30 on 2 March in Amsterdam (UTC+1).
    start = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    end = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    assert list(days(start, end, AMS)) == [(date(2026, 3, 2), H)]
    assert list(days(start, end, zone("UTC"))) == [
        (date(2026, 3, 1), H // 2),
        (date(2026, 3, 2), H // 2),
    ]


def test_an_unknown_zone_counts_in_utc() -> None:
    assert zone("Mars/Olympus") == zone("UTC")


def test_arrivals_and_departures_count_where_the_change_happened() -> None:
    tally = Tally()
    at = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 00:30 on the 3rd in Amsterdam
    tally.change("t", "bay", "site", AMS, at, "FREE", "OCCUPIED")
    tally.change("t", "bay", "site", AMS, at + timedelta(hours=1), "OCCUPIED", "FREE")
    tally.change("t", "bay", "site", AMS, at, "FREE", "RESERVED")  # neither
    assert tally.hourly[("t", "bay", datetime(2026, 3, 2, 23, tzinfo=UTC))][5:] == [1, 0]
    assert tally.hourly[("t", "bay", datetime(2026, 3, 3, 0, 30, tzinfo=UTC).replace(minute=0))][
        5:
    ] == [0, 1]
    assert tally.daily[("t", "site", date(2026, 3, 3))][5:] == [1, 1]


def test_archived_time_counts_nowhere_and_states_map_to_their_columns() -> None:
    tally = Tally()
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    for n, state in enumerate(
        ["FREE", "RESERVED_SOON", "OCCUPIED", "RESERVED", "UNKNOWN", "BLOCKED", "ARCHIVED"]
    ):
        s = start + timedelta(hours=n)
        tally.interval("t", "bay", None, AMS, state, s, s + timedelta(minutes=10))
    columns = [sum(cell[i] for cell in tally.hourly.values()) for i in range(5)]
    ten = H // 6
    assert columns == [2 * ten, ten, ten, ten, ten]
    assert tally.daily == {}  # no site: no site-day rollup
