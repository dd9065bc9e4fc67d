"""ChirpStack v4 MQTT messages as ChirpStack writes them (pbjson, defaults emitted).

Used by the simulator, the benchmarks and the tests, so all three speak exactly the
format the bridge reads in production.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import orjson


def rfc3339(value: datetime) -> str:
    """ChirpStack's chrono ``to_rfc3339()``: ``+00:00`` offset, 6 fractional digits here."""
    return value.isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class SimDevice:
    dev_eui: str
    application_id: str = "17c82e96-be03-4f38-aef3-f83d48582d97"
    profile_name: str = "Bosch TPS110 EU868"
    name: str = ""
    tenant_id: str = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242"
    device_class: str = "CLASS_A"
    tags: dict[str, str] = field(default_factory=dict)

    def topic(self, event: str, prefix: str = "") -> str:
        p = f"{prefix.rstrip('/')}/" if prefix else ""
        return f"{p}application/{self.application_id}/device/{self.dev_eui}/event/{event}"

    def command_topic(self, prefix: str = "") -> str:
        p = f"{prefix.rstrip('/')}/" if prefix else ""
        return f"{p}application/{self.application_id}/device/{self.dev_eui}/command/down"

    def device_info(self) -> dict[str, object]:
        return {
            "tenantId": self.tenant_id,
            "tenantName": "ChirpStack",
            "applicationId": self.application_id,
            "applicationName": "parking",
            "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
            "deviceProfileName": self.profile_name,
            "deviceName": self.name or self.dev_eui,
            "devEui": self.dev_eui,
            "deviceClassEnabled": self.device_class,
            "tags": dict(self.tags),
        }


def dedup_id(device: SimDevice, f_cnt: int, salt: str = "") -> str:
    """A stable deduplicationId for a device's frame, so a replayed scenario repeats it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sim/{device.dev_eui}/{f_cnt}/{salt}"))


def uplink(
    device: SimDevice,
    *,
    f_port: int,
    payload: bytes,
    f_cnt: int,
    time: datetime,
    deduplication_id: str | None = None,
    rssi: int = -97,
    snr: float = 7.5,
) -> bytes:
    body = {
        "deduplicationId": deduplication_id or dedup_id(device, f_cnt),
        "time": rfc3339(time),
        "deviceInfo": device.device_info(),
        "devAddr": "00189440",
        "adr": True,
        "dr": 5,
        "fCnt": f_cnt,
        "fPort": f_port,
        "confirmed": False,
        "data": base64.b64encode(payload).decode("ascii"),
        "rxInfo": [
            {
                "gatewayId": "0016c001ff10a235",
                "uplinkId": 4217106255,
                "nsTime": rfc3339(time),
                "rssi": rssi,
                "snr": snr,
                "channel": 2,
                "location": {},
                "context": "EFwMtA==",
                "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"},
                "crcStatus": "CRC_OK",
            }
        ],
        "txInfo": {
            "frequency": 868500000,
            "modulation": {
                "lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}
            },
        },
        "regionConfigId": "eu868",
    }
    return orjson.dumps(body)


def join(device: SimDevice, *, time: datetime, deduplication_id: str) -> bytes:
    return orjson.dumps(
        {
            "deduplicationId": deduplication_id,
            "time": rfc3339(time),
            "deviceInfo": device.device_info(),
            "devAddr": "00189440",
            "regionConfigId": "eu868",
        }
    )


def txack(device: SimDevice, *, time: datetime, queue_item_id: str, f_cnt_down: int) -> bytes:
    return orjson.dumps(
        {
            "downlinkId": 1234,
            "time": rfc3339(time),
            "deviceInfo": device.device_info(),
            "queueItemId": queue_item_id,
            "fCntDown": f_cnt_down,
            "gatewayId": "0016c001ff10a235",
            "txInfo": {
                "frequency": 869525000,
                "power": 14,
                "modulation": {
                    "lora": {"bandwidth": 125000, "spreadingFactor": 12, "codeRate": "CR_4_5"}
                },
                "timing": {"immediately": {}},
            },
        }
    )


def ack(
    device: SimDevice,
    *,
    time: datetime,
    queue_item_id: str,
    f_cnt_down: int,
    acknowledged: bool,
    deduplication_id: str = "",
) -> bytes:
    """The ``ack`` event of a confirmed downlink; ``acknowledged:false`` has no deduplicationId."""
    return orjson.dumps(
        {
            "deduplicationId": deduplication_id if acknowledged else "",
            "time": rfc3339(time),
            "deviceInfo": device.device_info(),
            "queueItemId": queue_item_id,
            "acknowledged": acknowledged,
            "fCntDown": f_cnt_down,
        }
    )
