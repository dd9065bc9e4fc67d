"""``parkstream ingest check`` run as a user would: NDJSON in, one JSON line out per message."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import orjson

from .messages import BOSCH_EUI, NWAVE_EUI, doc, raw, v4_topic


def line(topic: str, payload: bytes, **extra: Any) -> bytes:
    item = {"topic": topic, "payload_b64": base64.b64encode(payload).decode()} | extra
    return orjson.dumps(item) + b"\n"


def run(stdin: bytes, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run(
        [sys.executable, "-m", "parkstream", "ingest", "check", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    outputs = [orjson.loads(out) for out in done.stdout.splitlines()]
    return done.returncode, outputs, done.stderr.decode()


def test_captured_messages_give_one_outcome_line_each_in_order() -> None:
    mismatch = doc("v4_up_bosch.json")
    mismatch["deviceInfo"]["devEui"] = NWAVE_EUI
    bad_data = doc("v4_up_bosch.json") | {"data": "not base64!"}
    stdin = b"".join(
        [
            line(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json")),
            line(v4_topic(NWAVE_EUI), raw("v4_up_nwave.json")),
            line(v4_topic(BOSCH_EUI), raw("v4_up_mac_only.json")),
            orjson.dumps({"topic": v4_topic(BOSCH_EUI), "payload_b64": "%%%"}) + b"\n",
            line(v4_topic(BOSCH_EUI), orjson.dumps(bad_data)),
            line(v4_topic(BOSCH_EUI), orjson.dumps(mismatch)),
            line(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json")),
        ]
    )
    code, outputs, stderr = run(stdin)
    assert code == 0, stderr
    assert [(o["outcome"], o["reason"]) for o in outputs] == [
        ("accepted", None),
        ("accepted", None),
        ("ignored", "mac_only"),
        ("rejected", "bad_base64"),
        ("rejected", "bad_base64"),
        ("rejected", "eui_mismatch"),
        ("ignored", "duplicate"),
    ]
    assert all(set(o) == {"outcome", "reason", "events"} for o in outputs)
    bosch, nwave = outputs[0]["events"][0], outputs[1]["events"][0]
    assert (bosch["dev_eui"], bosch["data"]["f_port"], bosch["data"]["f_cnt"]) == (BOSCH_EUI, 1, 42)
    assert bosch["data"]["reading"]["occupied"] is True
    assert (nwave["dev_eui"], nwave["data"]["reading"]["occupied"]) == (NWAVE_EUI, True)
    assert all(o["events"] == [] for o in outputs[2:])


def test_bad_lines_are_rejected_lines_and_blank_lines_are_skipped() -> None:
    stdin = b'not json\n\n[1,2]\n{"payload_b64": "AA=="}\n{"topic": "t"}\n\xff\xfe\n'
    code, outputs, _ = run(stdin)
    assert code == 0
    assert [o["reason"] for o in outputs] == [
        "invalid_line",
        "invalid_line",
        "missing_field:topic",
        "missing_field:payload_b64",
        "invalid_line",
    ]
    assert {o["outcome"] for o in outputs} == {"rejected"}


def test_received_at_becomes_recorded_at() -> None:
    stdin = line(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"), received_at="2026-07-23T10:15:43.5Z")
    _, (output,), _ = run(stdin)
    assert output["events"][0]["recorded_at"] == "2026-07-23T10:15:43.500000+00:00"


def test_a_bad_received_at_rejects_the_line() -> None:
    stdin = line(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"), received_at="soon")
    _, (output,), _ = run(stdin)
    assert (output["outcome"], output["reason"]) == ("rejected", "bad_field:received_at")


def test_a_decoder_override_changes_the_reading() -> None:
    stdin = line(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"))
    _, (output,), _ = run(stdin, "--decoder-override", f"{BOSCH_EUI.upper()}=nwave_nps405")
    reading = output["events"][0]["data"]["reading"]
    assert (reading["decoder"], reading["occupied"]) == ("nwave_nps405", True)


def test_an_unknown_decoder_override_is_a_usage_error() -> None:
    code, outputs, stderr = run(b"", "--decoder-override", f"{BOSCH_EUI}=acme")
    assert code == 2
    assert outputs == []
    assert "unknown decoder" in stderr
