"""Reading space-events records: the fast path, its checks, and the reasons it names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from parkstream.domain.contract import encode
from parkstream.projector.records import BadRecord, Incoming, explain_rejection, read_event

from .lot import Lot


def first_events() -> list[bytes]:
    lot = Lot()
    lot.add_bay("bay-1")
    return [encode(e) for e in lot.events]


def rec(value: bytes | None) -> Incoming:
    return Incoming(3, 42, b"bay-1", value)


def test_an_event_is_read_with_its_position_and_utc_times() -> None:
    raw = first_events()[0]
    event = read_event(rec(raw))
    assert (event.type, event.partition, event.offset) == ("space.registered", 3, 42)
    assert event.occurred_at.tzinfo is UTC
    assert event.data["site_id"] == "site-1"


def reason(value: bytes | None) -> str:
    with pytest.raises(BadRecord) as caught:
        read_event(rec(value))
    return explain_rejection(rec(value), caught.value).reason


def with_changes(**changes: object) -> bytes:
    raw = orjson.loads(first_events()[0])
    raw.update(changes)
    return orjson.dumps(raw)


def test_unreadable_records_are_named() -> None:
    assert reason(b"{not json") == "invalid_json"
    assert reason(None) == "invalid_record"
    assert reason(b"[1]") == "invalid_record"
    assert reason(with_changes(type="space.exploded")) == "unknown_type"
    assert reason(with_changes(version=9)) == "unsupported_version"
    assert reason(with_changes(tenant_id=None)) == "invalid_record"
    assert reason(with_changes(occurred_at="yesterday")) == "invalid_record"


@pytest.mark.parametrize(
    "occurred_at",
    [datetime(1999, 12, 31, 23, 59, tzinfo=UTC), datetime(2027, 3, 10, tzinfo=UTC)],
)
def test_times_outside_the_sane_window_are_refused(occurred_at: datetime) -> None:
    raw = with_changes(occurred_at=occurred_at.isoformat(), recorded_at="2026-03-02T06:00:00+00:00")
    assert reason(raw) == "timestamp_out_of_range"


def test_a_backfill_within_the_window_is_fine() -> None:
    raw = with_changes(occurred_at="2024-05-01T00:00:00+02:00")
    event = read_event(rec(raw))
    assert event.occurred_at == datetime(2024, 4, 30, 22, tzinfo=UTC)
    later = with_changes(
        occurred_at=(datetime(2026, 3, 2, 6, tzinfo=UTC) + timedelta(days=300)).isoformat()
    )
    read_event(rec(later))


def test_a_record_the_contract_accepts_is_never_dead_lettered_for_our_fault() -> None:
    raw = first_events()[0]
    with pytest.raises(KeyError):
        explain_rejection(rec(raw), KeyError("a bug of the projector"))
