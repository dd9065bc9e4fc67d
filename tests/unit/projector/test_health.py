"""Device health from device-events: the latest radio and battery, whatever the batches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from parkstream.domain.contract import encode
from parkstream.projector.health import HEALTH, project, read_device_event
from parkstream.projector.records import BadRecord, Event, Incoming, explain_rejection
from parkstream.projector.tables import RowSet

from .lot import Lot


def a_day_of_devices() -> Lot:
    lot = Lot()
    lot.add_bay("bay-1")
    lot.add_bay("bay-2")
    for n in range(12):
        lot.advance(minutes=20).reading("bay-1", n % 2 == 0)
        if n % 3 == 0:
            lot.reading("bay-2", n % 2 == 1)
    lot.advance(minutes=1).status("bay-1", 61.0, margin=9)
    lot.advance(minutes=1).status("bay-2", None)
    return lot


def events_of(lot: Lot) -> list[Event]:
    return [
        read_device_event(Incoming(0, n, key, value))
        for n, (key, value) in enumerate(lot.device_records())
    ]


def table(rows: RowSet) -> dict[str, dict[str, Any]]:
    return {row[0]: dict(zip(HEALTH.names, row, strict=True)) for row in rows}


def merged(*batches: list[Event]) -> dict[str, dict[str, Any]]:
    """What the table holds after each batch is merged in turn."""
    state = RowSet(HEALTH)
    for batch in batches:
        for row in project(batch).of(HEALTH):
            state.add(list(row))
    return table(state)


def test_the_latest_uplink_and_status_of_each_device_are_kept() -> None:
    lot = a_day_of_devices()
    health = merged(events_of(lot))
    one, two = (health[lot.bays[b].sensor] for b in ("bay-1", "bay-2"))
    last = next(e for e in reversed(lot.device_events) if e.dev_eui == one["dev_eui"]
                and e.type == "device.uplink_observed")  # fmt: skip
    assert one["f_cnt"] == last.data.f_cnt  # type: ignore[attr-defined]
    assert one["rssi"] == last.data.radio.rssi  # type: ignore[attr-defined]
    assert one["snr"] == last.data.radio.snr  # type: ignore[attr-defined]
    assert one["gateway_count"] == len(last.data.radio.gateway_ids)  # type: ignore[attr-defined]
    assert one["last_uplink_at"] == last.occurred_at
    # bay-1's sensor answered DevStatusReq after its last uplink: that battery wins.
    assert (one["battery_pct"], one["battery_source"], one["margin"]) == (61.0, "status", 9)
    # bay-2's could not tell: its battery stays the one its uplinks decoded.
    assert two["battery_source"] == "uplink"
    assert two["battery_level_unavailable"] is True
    assert two["first_seen_at"] < two["last_seen_at"]


def test_any_batching_repeats_and_redeliveries_give_the_same_rows() -> None:
    events = events_of(a_day_of_devices())
    once = merged(events)
    assert merged(events[:7], events[7:19], events[19:]) == once
    assert merged(events, events) == once
    assert merged(events, events[3:9]) == once  # a redelivered part, later


def test_a_late_uplink_does_not_replace_a_newer_one() -> None:
    events = events_of(a_day_of_devices())
    uplinks = [e for e in events if e.type == "device.uplink_observed"]
    late = uplinks[0]
    assert merged(events, [late]) == merged(events)


def reason(value: bytes) -> str:
    record = Incoming(0, 0, b"k", value)
    with pytest.raises(BadRecord) as caught:
        read_device_event(record)
    return explain_rejection(record, caught.value).reason


def test_records_that_are_not_device_events_are_named() -> None:
    lot = a_day_of_devices()
    uplink = orjson.loads(lot.device_records()[0][1])
    assert reason(lot.records()[0][1]) == "unknown_type"  # a space event on device-events
    assert reason(b"{oops") == "invalid_json"
    assert reason(orjson.dumps({**uplink, "dev_eui": "A1B2"})) == "invalid_record"
    late = lot.device_events[0].model_copy(
        update={"occurred_at": lot.now + timedelta(days=400), "recorded_at": lot.now}
    )
    assert reason(encode(late)) == "timestamp_out_of_range"


def test_an_uplink_with_an_odd_battery_is_rejected_alone() -> None:
    lot = a_day_of_devices()
    raw = orjson.loads(lot.device_records()[-3][1])
    assert raw["type"] == "device.uplink_observed"
    raw["data"]["reading"]["battery_pct"] = "full"
    odd = read_device_event(Incoming(0, 99, b"k", orjson.dumps(raw)))
    changes = project([*events_of(lot), odd])
    assert list(changes.rejected) == [(0, 99)]
    assert table(changes.of(HEALTH)) == merged(events_of(lot))
