"""Device events: what ChirpStack told us about one device (topic ``device-events``).

Keyed by ``dev_eui`` so one device's events keep their order. ``tenant_id`` and
``space_id`` are empty: the stream processor maps a device to its space.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parkstream.domain.envelope import Envelope, Record

Scalar = str | int | float | bool | None


class DeviceInfo(Record):
    """ChirpStack's view of the device, copied from the event's ``deviceInfo``."""

    chirpstack_tenant_id: str | None = None
    application_id: str | None = None
    application_name: str | None = None
    device_profile_id: str | None = None
    device_profile_name: str | None = None
    device_name: str | None = None
    device_class: Literal["CLASS_A", "CLASS_B", "CLASS_C"] | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class KuandoStatus(Record):
    """What a Kuando Busylight reports it shows: the last colour frame it applied."""

    red: int = Field(ge=0, le=255)
    blue: int = Field(ge=0, le=255)
    green: int = Field(ge=0, le=255)
    on: int = Field(ge=0, le=255)
    off: int = Field(ge=0, le=255)
    messages_received: int | None = None
    messages_sent: int | None = None
    rssi: int | None = None
    snr: int | None = None
    sw_rev: int | None = None
    hw_rev: int | None = None
    adr: bool | None = None

    @property
    def frame_hex(self) -> str:
        """The 5-byte colour frame ``[R, B, G, on, off]`` in hex, as it was commanded."""
        return bytes((self.red, self.blue, self.green, self.on, self.off)).hex()


class Reading(Record):
    """A decoded sensor frame. ``occupied`` is None when the frame says nothing about it."""

    decoder: str = Field(description="Name of the decoder that produced the reading.")
    kind: str = Field(description="Frame kind, e.g. parking_status, heartbeat, startup.")
    occupied: bool | None = None
    battery_v: float | None = None
    battery_pct: float | None = None
    temperature_c: float | None = None
    display: KuandoStatus | None = None
    fields: dict[str, Scalar] = Field(
        default_factory=dict, description="Every other decoded field of the frame."
    )


class RadioInfo(Record):
    """Summary of the reception: the best gateway's signal and who heard the frame."""

    rssi: int | None = None
    snr: float | None = None
    gateway_ids: tuple[str, ...] = ()
    frequency: int | None = None
    spreading_factor: int | None = None


class UplinkData(Record):
    device: DeviceInfo
    f_port: int = Field(ge=0, le=255)
    f_cnt: int | None = Field(default=None, ge=0)
    dev_addr: str | None = None
    confirmed: bool = False
    adr: bool | None = None
    dr: int | None = None
    data_b64: str = Field(description="The frame payload, standard base64.")
    time_ns: int | None = Field(default=None, description="Event time in ns since the epoch.")
    radio: RadioInfo = Field(default_factory=RadioInfo)
    reading: Reading | None = None
    decode_error: str | None = Field(
        default=None, description="Why the payload could not be decoded (the uplink is kept)."
    )


class UplinkObserved(Envelope):
    """An uplink frame with its decoded reading."""

    type: Literal["device.uplink_observed"] = "device.uplink_observed"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: UplinkData


class JoinedData(Record):
    device: DeviceInfo
    dev_addr: str | None = None


class DeviceJoined(Envelope):
    """The device (re)joined the network: its session and downlink queue may be reset."""

    type: Literal["device.joined"] = "device.joined"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: JoinedData


class TxAckData(Record):
    device: DeviceInfo
    queue_item_id: str
    downlink_id: int | None = None
    f_cnt_down: int | None = None
    gateway_id: str | None = None


class DownlinkTransmitted(Envelope):
    """A gateway accepted a queued downlink for transmission (ChirpStack ``txack``)."""

    type: Literal["device.downlink_transmitted"] = "device.downlink_transmitted"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: TxAckData


class AckData(Record):
    device: DeviceInfo
    queue_item_id: str
    acknowledged: bool
    f_cnt_down: int | None = None


class DownlinkAcknowledged(Envelope):
    """A confirmed downlink was acknowledged by the device, or timed out (``acknowledged``)."""

    type: Literal["device.downlink_acknowledged"] = "device.downlink_acknowledged"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: AckData


class DroppedData(Record):
    device: DeviceInfo
    queue_item_id: str | None = None
    code: str
    description: str = ""


class DownlinkDropped(Envelope):
    """ChirpStack dropped a queued downlink (log EXPIRED or DOWNLINK_PAYLOAD_SIZE)."""

    type: Literal["device.downlink_dropped"] = "device.downlink_dropped"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: DroppedData


class StatusData(Record):
    device: DeviceInfo
    margin: int | None = None
    external_power_source: bool = False
    battery_level_unavailable: bool = False
    battery_level: float | None = Field(default=None, description="Percent, 0..100.")


class DeviceStatusReported(Envelope):
    """The device's answer to a DevStatusReq: battery and link margin."""

    type: Literal["device.status_reported"] = "device.status_reported"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: StatusData


class LogData(Record):
    device: DeviceInfo
    level: str
    code: str
    description: str = ""
    context: dict[str, str] = Field(default_factory=dict)


class DeviceLogged(Envelope):
    """A ChirpStack log event about the device (codec errors, fCnt resets, ...)."""

    type: Literal["device.logged"] = "device.logged"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: LogData


class LocationData(Record):
    device: DeviceInfo
    latitude: float
    longitude: float
    altitude: float | None = None
    source: str | None = None
    accuracy: float | None = None


class LocationReported(Envelope):
    """ChirpStack resolved the device's location."""

    type: Literal["device.location_reported"] = "device.location_reported"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: LocationData


DeviceEvent = (
    UplinkObserved
    | DeviceJoined
    | DownlinkTransmitted
    | DownlinkAcknowledged
    | DownlinkDropped
    | DeviceStatusReported
    | DeviceLogged
    | LocationReported
)

DEVICE_EVENT_TYPES: tuple[type[Envelope], ...] = (
    UplinkObserved,
    DeviceJoined,
    DownlinkTransmitted,
    DownlinkAcknowledged,
    DownlinkDropped,
    DeviceStatusReported,
    DeviceLogged,
    LocationReported,
)
