"""The simulated lot without a broker: what it publishes over simulated time, how lights answer."""

from __future__ import annotations

import base64
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, time
from typing import Any

import orjson
import pytest

from parkstream.decoders.registry import Choice, DecoderRegistry, UplinkFrame
from parkstream.domain.device_events import (
    DeviceJoined,
    DownlinkAcknowledged,
    DownlinkTransmitted,
    UplinkObserved,
)
from parkstream.domain.envelope import Envelope
from parkstream.domain.kuando import colour_frame, decode_status
from parkstream.ingest.parse import parse_message
from parkstream.simulate.lot import Lot, LotConfig, Outgoing
from parkstream.simulate.occupancy import bay_schedule

WALL = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
REGISTRY = DecoderRegistry.default()


def quiet(**fields: Any) -> LotConfig:
    """A lot that neither misses downlinks nor sends malformed messages."""
    return LotConfig(**{"miss_rate": 0.0, "malformed_rate": 0.0, **fields})


def parsed(message: Outgoing) -> Envelope:
    result = parse_message(message.topic, message.payload, recorded_at=WALL, decoders=REGISTRY)
    assert result.outcome == "accepted", (message, result)
    assert result.reason is None, result.detail
    (event,) = result.events
    return event


def uplinks(messages: list[Outgoing], dev_eui: str | None = None) -> list[UplinkObserved]:
    events = [parsed(m) for m in messages if m.kind == "up"]
    ups = [e for e in events if isinstance(e, UplinkObserved)]
    return [u for u in ups if dev_eui is None or u.dev_eui == dev_eui]


def command(light: str, data: bytes, command_id: str, **extra: object) -> bytes:
    body: dict[str, object] = {"id": command_id, "devEui": light, "confirmed": False}
    body.update(fPort=15, data=base64.b64encode(data).decode(), **extra)
    return orjson.dumps(body)


def command_topic(lot: Lot, light: str) -> str:
    return lot.lights[light].device.command_topic(lot.config.topic_prefix)


def test_devices_get_deterministic_euis_and_profiles_the_bridge_decodes() -> None:
    lot = Lot(LotConfig(bays=5, seed=5))
    assert [b.sensor_eui for b in lot.bays][:2] == ["a000000500000001", "a000000500000002"]
    assert [b.light_eui for b in lot.bays][:2] == ["2020204100050001", "2020204100050002"]
    assert [b.vendor for b in lot.bays] == [
        "bosch_tps110",
        "nwave_nps405",
        "tekzitel",
        "browan_tbms100",
        "bosch_tps110",
    ]
    for bay in lot.bays:
        sensor, light = lot.sensors[bay.sensor_eui], lot.lights[bay.light_eui]
        frame = UplinkFrame(bay.sensor_eui, 1, b"", sensor.device.profile_name)
        assert REGISTRY.choose(frame) == Choice(bay.vendor, "profile")
        light_frame = UplinkFrame(bay.light_eui, 15, b"", light.device.profile_name)
        assert REGISTRY.choose(light_frame) == Choice("kuando", "profile")
        assert light.device.device_class == "CLASS_C"
    assert Lot(LotConfig(bays=5, seed=5)).bays == lot.bays


def test_the_same_seed_and_run_id_publish_the_same_messages() -> None:
    def day(seed: int) -> list[bytes]:
        lot = Lot(LotConfig(bays=8, seed=seed, malformed_rate=0.01), run_id="run")
        return [m.payload for m in lot.advance(24 * 60, WALL)]

    assert day(3) == day(3)
    assert day(3) != day(4)


def test_arrivals_and_departures_follow_the_bay_schedule_of_the_seed() -> None:
    config = LotConfig(bays=10, seed=9, start=time(6, 0))
    lot = Lot(config)
    lot.advance(18 * 60, WALL)
    changes = [
        bay_schedule(random.Random(f"9/bay/{i}"), start_minute=360, duration=18 * 60)
        for i in range(10)
    ]
    arrivals = sum(c.occupied for _, cs in changes for c in cs)
    departures = sum(not c.occupied for _, cs in changes for c in cs)
    assert (lot.stats.arrivals, lot.stats.departures) == (arrivals, departures)
    assert arrivals > 10  # the morning fills the lot
    final = [cs[-1].occupied if cs else initial for initial, cs in changes]
    assert [lot.sensors[b.sensor_eui].occupied for b in lot.bays] == final


def test_a_day_of_traffic_parses_and_the_last_report_is_each_bays_state() -> None:
    lot = Lot(quiet(bays=8, silent_bay=None))
    messages = lot.advance(24 * 60, WALL)
    kinds = Counter(type(parsed(m)).__name__ for m in messages)
    assert kinds["DeviceJoined"] == 16
    assert kinds["UplinkObserved"] == len(messages) - 16
    last: dict[str, bool] = {}
    f_cnts: dict[str, list[int]] = defaultdict(list)
    for up in uplinks(messages):
        reading = up.data.reading
        assert reading is not None
        assert up.data.decode_error is None
        f_cnts[up.dev_eui].append(up.data.f_cnt or 0)
        if reading.occupied is not None:
            last[up.dev_eui] = reading.occupied
    assert last == {eui: s.occupied for eui, s in lot.sensors.items()}
    assert all(counts == list(range(len(counts))) for counts in f_cnts.values())
    dedup_ids = [orjson.loads(m.payload)["deduplicationId"] for m in messages]
    assert len(set(dedup_ids)) == len(dedup_ids)


def test_sensors_send_a_heartbeat_every_period() -> None:
    lot = Lot(quiet(bays=4, heartbeat_minutes=20, silent_bay=None))
    messages = lot.advance(200, WALL)
    for bay in lot.bays:
        beats = [m for m in messages if m.dev_eui == bay.sensor_eui and "heartbeat" in m.detail]
        assert 9 <= len(beats) <= 10
    bosch = [u for u in uplinks(messages, lot.bays[0].sensor_eui) if u.data.f_port == 2]
    assert bosch
    assert all(u.data.reading and u.data.reading.kind == "heartbeat" for u in bosch)


def test_the_silent_sensor_says_nothing_for_three_hours_then_rejoins() -> None:
    lot = Lot(quiet(bays=3, heartbeat_minutes=15))
    silent = lot.bays[-1].sensor_eui
    before = lot.advance(60, WALL)
    during = lot.advance(239.9, WALL)
    after = lot.advance(241, WALL)
    assert any(m.dev_eui == silent for m in before)
    assert not any(m.dev_eui == silent for m in during)
    assert any(m.dev_eui == lot.bays[0].sensor_eui for m in during)
    back = [m for m in after if m.dev_eui == silent]
    assert [m.kind for m in back] == ["join", "up"]
    (startup,) = uplinks(back)
    assert startup.data.f_cnt == 0
    assert startup.data.reading is not None
    assert startup.data.reading.occupied == lot.sensors[silent].occupied


def started_lot(**overrides: Any) -> Lot:
    lot = Lot(quiet(**{"bays": 2, **overrides}))
    lot.advance(5, WALL)  # every device has joined
    return lot


def test_a_colour_command_is_txacked_and_confirmed_by_a_status_uplink() -> None:
    lot = started_lot()
    light = lot.bays[0].light_eui
    green = colour_frame(0, 255, 0).payload
    receipt = lot.receive(command_topic(lot, light), command(light, green, "cmd-1"), 5.0)
    assert (receipt.outcome, receipt.command_id) == ("accepted", "cmd-1")
    assert lot.lights[light].frame == bytes(5)  # not yet received

    txack = lot.advance(5.0 + 1 / 60, WALL)
    (event,) = [parsed(m) for m in txack]
    assert isinstance(event, DownlinkTransmitted)
    assert (event.data.queue_item_id, event.data.f_cnt_down) == ("cmd-1", 0)
    assert lot.lights[light].frame == green

    (status,) = uplinks(lot.advance(5.1, WALL), light)
    reading = status.data.reading
    assert reading is not None
    assert reading.display is not None
    assert reading.display.frame_hex == green.hex()
    assert reading.display.messages_received == 1

    red = colour_frame(255, 0, 0, on=10, off=10).payload
    lot.receive(command_topic(lot, light), command(light, red, "cmd-2"), 6.0)
    later = lot.advance(7, WALL)
    (second,) = [e for e in map(parsed, later) if isinstance(e, DownlinkTransmitted)]
    assert (second.data.queue_item_id, second.data.f_cnt_down) == ("cmd-2", 1)
    (up,) = uplinks(later, light)
    assert decode_status(base64.b64decode(up.data.data_b64)).frame_hex == red.hex()
    assert lot.lights[light].frame_hex == red.hex()
    assert (lot.stats.downlinks_received, lot.stats.answered) == (2, 2)


def test_a_confirmed_command_is_also_acked() -> None:
    lot = started_lot()
    light = lot.bays[1].light_eui
    lot.receive(command_topic(lot, light), command(light, bytes(5), "c", confirmed=True), 5.0)
    events = [parsed(m) for m in lot.advance(6, WALL)]
    acks = [e for e in events if isinstance(e, DownlinkAcknowledged)]
    assert [(a.data.queue_item_id, a.data.acknowledged) for a in acks] == [("c", True)]


def test_a_missed_command_gets_no_txack_and_changes_nothing() -> None:
    lot = started_lot(miss_rate=1.0)
    light = lot.bays[0].light_eui
    receipt = lot.receive(
        command_topic(lot, light), command(light, b"\xff\x00\x00\xff\x00", "m"), 5.0
    )
    assert receipt.outcome == "missed"
    assert not [m for m in lot.advance(6, WALL) if m.dev_eui == light]
    assert lot.lights[light].frame == bytes(5)
    assert lot.stats.missed == 1


@pytest.mark.parametrize(
    "payload", [b"{oops", b'{"devEui":"2020204100010001","fPort":15,"data":"!!"}']
)
def test_a_refused_command_gets_no_answer(payload: bytes) -> None:
    lot = started_lot()
    light = lot.bays[0].light_eui
    assert lot.receive(command_topic(lot, light), payload, 5.0).outcome == "refused"
    assert not lot.advance(6, WALL)
    assert lot.stats.refused == 1


def test_commands_to_other_devices_or_applications_are_not_ours() -> None:
    lot = started_lot(topic_prefix="t-9")
    light = lot.bays[0].light_eui
    body = command(light, bytes(5), "x")
    app = lot.config.application_id
    for topic in (
        f"application/{app}/device/{light}/command/down",  # no prefix
        f"t-9/application/other/device/{light}/command/down",
        f"t-9/application/{app}/device/0000000000000001/command/down",
    ):
        assert lot.receive(topic, body, 5.0).outcome == "foreign"
    assert lot.stats.foreign == 3
    assert lot.stats.downlinks_received == 0


def test_an_unknown_frame_is_transmitted_but_the_light_keeps_its_colour() -> None:
    lot = started_lot()
    light = lot.bays[0].light_eui
    lot.receive(command_topic(lot, light), command(light, b"\x01\x02\x03", "u"), 5.0)
    messages = lot.advance(6, WALL)
    assert [m.kind for m in messages if m.dev_eui == light] == ["txack", "up"]
    assert lot.lights[light].frame == bytes(5)
    assert lot.stats.ignored == 1


def test_lights_send_a_keep_alive_status_every_30_minutes() -> None:
    lot = Lot(quiet(bays=2))
    messages = lot.advance(181, WALL)
    for bay in lot.bays:
        statuses = uplinks(messages, bay.light_eui)
        assert 6 <= len(statuses) - 1 <= 7  # the startup status, then one per 30 minutes
        displays = [s.data.reading.display for s in statuses if s.data.reading]
        sent = [d.messages_sent for d in displays if d is not None]
        assert sent == list(range(1, len(statuses) + 1))


def test_a_keep_alive_command_changes_the_interval() -> None:
    lot = started_lot()
    light = lot.bays[0].light_eui
    lot.receive(command_topic(lot, light), command(light, b"\x04\x05", "k"), 5.0)
    lot.advance(40, WALL)  # the keep-alive scheduled before uses the old interval once
    assert lot.lights[light].keepalive_minutes == 5
    assert len(uplinks(lot.advance(70, WALL), light)) == 6


def test_malformed_copies_follow_uplinks_and_are_rejected() -> None:
    lot = Lot(LotConfig(bays=2, malformed_rate=1.0))
    messages = lot.advance(30, WALL)
    bad = [m for m in messages if m.kind == "malformed"]
    assert len(bad) == sum(m.kind == "up" for m in messages)
    reasons = {
        parse_message(m.topic, m.payload, recorded_at=WALL, decoders=REGISTRY).reason for m in bad
    }
    assert reasons <= {"invalid_json", "bad_base64", "eui_mismatch"}
    assert len(reasons) >= 2


def test_topics_carry_the_prefix() -> None:
    lot = Lot(LotConfig(bays=1, topic_prefix="/t-1/site/"))
    messages = lot.advance(5, WALL)
    assert {m.topic.split("/application/")[0] for m in messages} == {"t-1/site"}
    assert lot.config.command_filter() == (
        f"t-1/site/application/{lot.config.application_id}/device/+/command/down"
    )
    assert isinstance(parsed(messages[0]), DeviceJoined | UplinkObserved)


def test_the_clock_label_names_the_simulated_day_and_time() -> None:
    lot = Lot(LotConfig(bays=1))
    assert lot.clock_label(0) == "day 1 07:30"
    assert lot.clock_label(16 * 60 + 45) == "day 2 00:15"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"bays": 0}, "bays"),
        ({"speed": 0}, "speed"),
        ({"miss_rate": 1.5}, "miss_rate"),
        ({"malformed_rate": -0.1}, "malformed_rate"),
        ({"heartbeat_minutes": 0}, "heartbeat_minutes"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"vendors": ("acme",)}, "vendors"),
        ({"application_id": "a/b"}, "application id"),
        ({"topic_prefix": "t/#"}, "wildcards"),
    ],
)
def test_a_bad_config_is_refused(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LotConfig(**bad)
