"""Example records of the AsyncAPI document: one car parking in bay A1, and what follows.

Built from the models and written with ``to_dict`` and the CloudEvents headers the
producers set, so an example is a record parkstream could write today; a model change
that invalidates one fails here, not in a reader's hands.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from parkstream.domain import commands as cmd
from parkstream.domain import device_events as dev
from parkstream.domain.cloudevents import headers
from parkstream.domain.contract import to_dict
from parkstream.domain.downlinks import DownlinkData, DownlinkRequested
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.space_events import (
    Explanation,
    SpaceStateChanged,
    SpaceStateChangedData,
)
from parkstream.domain.states import Layer, SpaceState

Example = dict[str, Any]

AT = datetime(2026, 3, 2, 8, 0, 30, tzinfo=UTC)
TENANT = "t-acme"
SPACE = "sp-a1"
SENSOR = "a100000000000001"
LIGHT = "2020204100000001"


def _example(topic: str, name: str, summary: str, record: Envelope) -> tuple[str, Example]:
    return topic, {
        "name": name,
        "summary": summary,
        "headers": {key: value.decode() for key, value in headers(record, topic)},
        "payload": to_dict(record),
    }


def records() -> list[tuple[str, Example]]:
    """(catalogue topic, AsyncAPI message example) pairs, in the order they happen."""
    uplink = dev.UplinkObserved(
        event_id="dev-7f3a9c",
        dev_eui=SENSOR,
        occurred_at=AT,
        recorded_at=AT + timedelta(milliseconds=40),
        source=Source(kind="mqtt", topic=f"application/app-1/device/{SENSOR}/event/up"),
        data=dev.UplinkData(
            device=dev.DeviceInfo(application_id="app-1", device_name="A1 sensor"),
            f_port=1,
            f_cnt=812,
            data_b64="AQ==",
            reading=dev.Reading(decoder="bosch_tps110", kind="parking_status", occupied=True),
        ),
    )
    changed = SpaceStateChanged(
        event_id="sev-41d2e0",
        tenant_id=TENANT,
        space_id=SPACE,
        occurred_at=AT,
        recorded_at=AT + timedelta(milliseconds=40),
        source=Source(kind="kafka", topic="parkstream.device-events.v1", partition=3, offset=5120),
        causation_id=uplink.event_id,
        correlation_id=uplink.event_id,
        data=SpaceStateChangedData(
            from_state=SpaceState.FREE,
            to_state=SpaceState.OCCUPIED,
            explanation=Explanation(
                state=SpaceState.OCCUPIED,
                layer=Layer.SENSOR,
                summary="The sensor reports a car.",
                cause_event_ids=(uplink.event_id,),
                since=AT,
            ),
        ),
    )
    downlink = DownlinkRequested(
        event_id="dl-0b91aa",
        tenant_id=TENANT,
        space_id=SPACE,
        dev_eui=LIGHT,
        occurred_at=AT,
        recorded_at=AT + timedelta(milliseconds=40),
        source=Source(kind="kafka", topic="parkstream.device-events.v1", partition=3, offset=5120),
        causation_id=changed.event_id,
        correlation_id=uplink.event_id,
        data=DownlinkData(command_id="cmd-5e2c71", f_port=15, data_b64="/wAAAAA="),
    )
    override = cmd.SetOverride(
        event_id="api-9c04d7",
        tenant_id=TENANT,
        space_id=SPACE,
        occurred_at=AT + timedelta(hours=5),
        recorded_at=AT + timedelta(hours=5),
        source=Source(kind="api"),
        data=cmd.SetOverrideData(
            state=SpaceState.OUT_OF_ORDER,
            reason="barrier repair",
            until=AT + timedelta(hours=6),
        ),
    )
    return [
        _example(
            "device-events.v1",
            "car-arrives",
            "Bay A1's sensor reports a car (decoded uplink).",
            uplink,
        ),
        _example(
            "space-events.v1",
            "a1-occupied",
            "Bay A1 turns from FREE to OCCUPIED because its sensor reported a car.",
            changed,
        ),
        _example(
            "downlinks.v1",
            "a1-light-red",
            "Bay A1's light is told to show the colour of OCCUPIED.",
            downlink,
        ),
        _example(
            "space-commands.v1",
            "a1-out-of-order",
            "An operator takes bay A1 out of order for an hour.",
            override,
        ),
    ]


def by_message() -> dict[tuple[str, str, int], list[Example]]:
    """The examples keyed by (topic, type, version) of their record."""
    result: dict[tuple[str, str, int], list[Example]] = {}
    for topic, example in records():
        payload = example["payload"]
        key = (topic, str(payload["type"]), int(payload["version"]))
        result.setdefault(key, []).append(example)
    return result
