"""The one-pass reader of common v4 uplinks gives exactly what the general reader gives."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkstream.decoders.registry import DecoderRegistry
from parkstream.domain.contract import encode
from parkstream.ingest.chirpstack import parse_v4
from parkstream.ingest.envelopes import Message
from parkstream.ingest.fast_path import common_uplink
from parkstream.ingest.limits import DEFAULT_LIMITS
from parkstream.ingest.result import ParseResult, Rejected
from parkstream.simulate.messages import SimDevice, uplink

from .messages import BOSCH_EUI, CODEC_EUI, KUANDO_EUI, NWAVE_EUI, RECORDED_AT, doc, v4_topic

REGISTRY = DecoderRegistry.default()
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
UPLINKS = {
    "v4_up_bosch.json": BOSCH_EUI,
    "v4_up_nwave.json": NWAVE_EUI,
    "v4_up_kuando_status.json": KUANDO_EUI,
    "v4_up_codec_object.json": CODEC_EUI,
    "v4_up_mac_only.json": BOSCH_EUI,
}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "AQ==", "AAD//wA=", "0016C001FF10A235", "2026-07-23T10:15:42Z"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def message(document: dict[str, Any], dev_eui: str) -> Message:
    payload = orjson.dumps(document)
    return Message(v4_topic(dev_eui), dev_eui, "up", payload, RECORDED_AT, REGISTRY, DEFAULT_LIMITS)


def general(document: dict[str, Any], msg: Message) -> ParseResult | Rejected:
    try:
        return parse_v4(document, msg)
    except Rejected as exc:
        return exc


def assert_same_as_the_general_reader(document: dict[str, Any], dev_eui: str) -> bool:
    """True when the one-pass reader took the document (and agreed)."""
    msg = message(document, dev_eui)
    fast = common_uplink(copy.deepcopy(document), msg)
    if fast is None:
        return False
    slow = general(document, msg)
    assert isinstance(slow, ParseResult), f"the general reader refused it: {slow}"
    assert fast == slow
    assert [encode(e) for e in fast.events] == [encode(e) for e in slow.events]
    return True


@pytest.mark.parametrize(
    ("name", "taken"),
    [
        ("v4_up_bosch.json", True),
        ("v4_up_nwave.json", True),
        ("v4_up_kuando_status.json", True),
        ("v4_up_codec_object.json", True),
        ("v4_up_mac_only.json", False),  # ignored: the general reader says why
    ],
)
def test_captured_uplinks_read_in_one_pass_equal_the_general_reading(
    name: str, taken: bool
) -> None:
    assert assert_same_as_the_general_reader(doc(name), UPLINKS[name]) is taken


@given(
    f_port=st.integers(min_value=1, max_value=255),
    payload=st.binary(min_size=1, max_size=12),
    f_cnt=st.integers(min_value=0, max_value=2**32 - 1),
    millis=st.integers(min_value=0, max_value=10**12),
    rssi=st.integers(min_value=-200, max_value=0),
    snr=st.floats(min_value=-30, max_value=30),
)
def test_simulated_uplinks_equal_the_general_reading(
    f_port: int, payload: bytes, f_cnt: int, millis: int, rssi: int, snr: float
) -> None:
    device = SimDevice(BOSCH_EUI)
    body = uplink(
        device,
        f_port=f_port,
        payload=payload,
        f_cnt=f_cnt,
        time=T0 + timedelta(milliseconds=millis),
        rssi=rssi,
        snr=snr,
    )
    assert_same_as_the_general_reader(orjson.loads(body), BOSCH_EUI)


@settings(max_examples=1500)
@given(
    name=st.sampled_from(sorted(UPLINKS)),
    key=st.text(min_size=1, max_size=2),
    value=json_values,
    delete=st.booleans(),
    data=st.data(),
)
def test_an_uplink_with_any_field_changed_is_read_alike_or_left_to_the_general_reader(
    name: str, key: str, value: object, delete: bool, data: st.DataObject
) -> None:
    document: dict[str, Any] = doc(name)
    target: dict[str, Any] = document
    for _ in range(data.draw(st.integers(min_value=0, max_value=3))):
        nested = [k for k, v in target.items() if isinstance(v, dict | list) and v]
        if not nested:
            break
        child = target[data.draw(st.sampled_from(sorted(nested)))]
        target = child if isinstance(child, dict) else child[0]
        if not isinstance(target, dict):
            break
    if isinstance(target, dict):
        chosen = data.draw(st.sampled_from([*sorted(target), key]))
        if delete:
            target.pop(chosen, None)
        else:
            target[chosen] = value
    assert_same_as_the_general_reader(document, UPLINKS[name])


def test_the_common_uplink_is_read_in_one_pass_by_parse_message() -> None:
    body = uplink(SimDevice(BOSCH_EUI), f_port=1, payload=b"\x01", f_cnt=3, time=T0)
    msg = message(orjson.loads(body), BOSCH_EUI)
    assert common_uplink(orjson.loads(body), msg) is not None
