"""The end-to-end benchmark's bookkeeping: percentiles, matching downlinks to uplinks, verdicts."""

from __future__ import annotations

import base64

import orjson
import pytest
from bench.common import Result
from bench.e2e import FREE, OCCUPIED, Received, Sent, match_by_colour, match_by_id, percentile


def test_percentile_is_a_measured_value_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0, 1.0, 2.0], 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0


def test_percentile_of_nothing_is_nan() -> None:
    assert percentile([], 0.5) != percentile([], 0.5)


def _down(at: float, light: str, frame: bytes, command_id: str) -> Received:
    body = {"id": command_id, "devEui": light, "data": base64.b64encode(frame).decode()}
    return Received(at, f"application/a/device/{light}/command/down", orjson.dumps(body))


def test_each_downlink_answers_the_earliest_uplink_expecting_its_colour() -> None:
    sent = [
        Sent(0, OCCUPIED, 1.0, "u1"),
        Sent(1, OCCUPIED, 1.5, "u2"),
        Sent(0, FREE, 2.0, "u3"),
        Sent(0, OCCUPIED, 3.0, "u4"),
    ]
    received = [
        _down(1.02, "l0", OCCUPIED, "c1"),
        _down(1.03, "l0", OCCUPIED, "c1"),  # a repeat of the same command
        _down(2.01, "l0", FREE, "c2"),
        _down(2.5, "l1", FREE, "c3"),  # light 1 was never asked for free
        _down(3.04, "l0", OCCUPIED, "c4"),
    ]
    matched = match_by_colour(sent, received, {"l0": 0, "l1": 1})
    assert matched.latencies == pytest.approx([0.02, 0.01, 0.04])
    assert (matched.missing, matched.extra, matched.repeated) == (1, 1, 1)


def test_an_uplink_skipped_over_is_missing() -> None:
    sent = [Sent(0, OCCUPIED, 1.0, "u1"), Sent(0, FREE, 2.0, "u2"), Sent(0, OCCUPIED, 3.0, "u3")]
    received = [_down(3.1, "l0", OCCUPIED, "c9")]
    matched = match_by_colour(sent, received, {"l0": 0})
    assert matched.latencies == pytest.approx([2.1])  # the first uplink expecting red
    assert matched.missing == 2


def test_a_downlink_before_its_uplink_answers_nothing() -> None:
    matched = match_by_colour([Sent(0, FREE, 5.0, "u1")], [_down(4.0, "l0", FREE, "c1")], {"l0": 0})
    assert (matched.latencies, matched.missing, matched.extra) == ([], 1, 1)


def test_echoes_match_on_the_deduplication_id() -> None:
    sent = [Sent(0, FREE, 1.0, "a"), Sent(1, FREE, 1.1, "b")]
    echo = [
        Received(1.2, "t", orjson.dumps({"deduplicationId": "b"})),
        Received(1.3, "t", orjson.dumps({"deduplicationId": "b"})),
        Received(1.4, "t", orjson.dumps({"deduplicationId": "zzz"})),
    ]
    matched = match_by_id(sent, echo)
    assert matched.latencies == pytest.approx([0.1])
    assert (matched.missing, matched.extra, matched.repeated) == (1, 1, 1)


def test_a_limit_fails_a_result_above_it_whatever_the_ratio() -> None:
    assert Result("e2e", 40.0, "ms p99", baseline=10.0, limit=50.0).passed is True
    assert Result("e2e", 60.0, "ms p99", baseline=100.0, limit=50.0).passed is False
    assert Result("e2e", 40.0, "ms p99", limit=50.0).passed is True
    assert Result("x", 90.0, "msg/s", baseline=100.0, goal=0.8).passed is True
    assert Result("x", 90.0, "msg/s").passed is None
