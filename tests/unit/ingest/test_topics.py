"""ChirpStack topic names: v4, v3 ≥ 3.11, v3 before 3.11, with an optional prefix."""

from __future__ import annotations

import pytest

from parkstream.ingest.topics import Topic, TopicProblem, parse_topic

APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
EUI = "0101010101010101"


def topic(text: str) -> Topic:
    parsed = parse_topic(text)
    assert isinstance(parsed, Topic), parsed
    return parsed


@pytest.mark.parametrize("event", ["up", "join", "ack", "txack", "status", "log", "location"])
def test_v4_event_topics_name_application_device_and_event(event: str) -> None:
    parsed = topic(f"application/{APP}/device/{EUI}/event/{event}")
    assert (parsed.application_id, parsed.dev_eui, parsed.event) == (APP, EUI, event)
    assert parsed.shape == "event"
    assert parsed.application_is_uuid


def test_v3_topics_have_a_numeric_application_and_an_error_event() -> None:
    parsed = topic(f"application/12/device/{EUI}/event/error")
    assert (parsed.application_id, parsed.event) == ("12", "error")
    assert not parsed.application_is_uuid


def test_pre_3_11_rx_topic_is_an_uplink() -> None:
    parsed = topic(f"application/12/device/{EUI}/rx")
    assert (parsed.shape, parsed.name, parsed.event) == ("legacy", "rx", "up")


def test_a_prefix_before_application_is_kept_apart() -> None:
    parsed = topic(f"site-a/lns/application/{APP}/device/{EUI}/event/up")
    assert parsed.prefix == "site-a/lns"
    assert parsed.event == "up"


def test_upper_case_hex_eui_becomes_lower_case() -> None:
    assert topic(f"application/{APP}/device/70B3D5E75E00AA01/event/up").dev_eui == (
        "70b3d5e75e00aa01"
    )


@pytest.mark.parametrize(
    ("text", "outcome", "reason"),
    [
        (f"application/{APP}/device/{EUI}/event/integration", "ignored", "unsupported_event"),
        (f"application/{APP}/device/{EUI}/command/down", "ignored", "command_topic"),
        (f"application/12/device/{EUI}/tx", "ignored", "command_topic"),
        (f"application/{APP}/device/{EUI}/event/frobnicate", "rejected", "unknown_event"),
        (f"application/{APP}/device/{EUI}/event/rx", "rejected", "unknown_event"),
        (f"application/12/device/{EUI}/log", "rejected", "unknown_event"),
        (f"application/{APP}/device/01010101/event/up", "rejected", "bad_eui"),
        (f"application/{APP}/device/zz01010101010101/event/up", "rejected", "bad_eui"),
        (f"application/{APP}/device/{EUI}", "rejected", "bad_topic"),
        (f"application/{APP}/gateway/{EUI}/event/up", "rejected", "bad_topic"),
        ("", "rejected", "bad_topic"),
        (f"application/{APP}/device/{EUI}/event/up/extra", "rejected", "bad_topic"),
        ("x" * 600, "rejected", "bad_topic"),
    ],
)
def test_other_topics_are_ignored_or_rejected_with_a_reason(
    text: str, outcome: str, reason: str
) -> None:
    parsed = parse_topic(text)
    assert isinstance(parsed, TopicProblem)
    assert (parsed.outcome, parsed.reason) == (outcome, reason)
