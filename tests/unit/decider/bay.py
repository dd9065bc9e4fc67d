"""A given/when/then driver for the decider: one bay, a clock, and helpers to feed it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from parkstream.domain import commands as cmd
from parkstream.domain import device_events as dev
from parkstream.domain.decider import decide_and_evolve
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.evolve import fold
from parkstream.domain.kuando import colour_frame_hex
from parkstream.domain.space import Space, initial_state

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SENSOR = "a1b2c3d4e5f60001"
LIGHT = "2020204100c30a01"
TENANT = "t-acme"
SPACE = "bay-1"
DEVICE = dev.DeviceInfo(device_profile_name="Bosch TPS110")


class Bay:
    def __init__(self, *, config: cmd.SpaceConfig | None = None, start: datetime = T0) -> None:
        self.state: Space = initial_state(SPACE)
        self.now = start
        self.history: list[Envelope] = []
        self._n = 0
        self.config = config or cmd.SpaceConfig()

    # --- plumbing ---------------------------------------------------------------------
    def _id(self) -> str:
        self._n += 1
        return f"in-{self._n}"

    def at(self, **delta: float) -> Bay:
        self.now = self.now + timedelta(**delta)
        return self

    def feed(self, inp: Envelope) -> list[Envelope]:
        self.state, events = decide_and_evolve(self.state, inp, self.now)
        self.history.extend(events)
        return events

    def _env(self, **kw: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "event_id": self._id(),
            "occurred_at": self.now,
            "recorded_at": self.now,
            "source": Source(kind="api"),
        }
        base.update(kw)
        return base

    def command(self, cls: type[Envelope], data: Any) -> list[Envelope]:
        return self.feed(cls(**self._env(tenant_id=TENANT, space_id=SPACE, data=data)))

    # --- commands ---------------------------------------------------------------------
    def register(self) -> list[Envelope]:
        return self.command(
            cmd.RegisterSpace,
            cmd.RegisterSpaceData(site_id="site-1", name="Bay 1", code="A1", config=self.config),
        )

    def assign(self, role: str, eui: str) -> list[Envelope]:
        return self.command(cmd.AssignDevice, cmd.AssignDeviceData(dev_eui=eui, role=role))

    def ready(self, light: bool = True) -> Bay:
        """Registered, with a sensor that reported FREE (and a light that confirmed it)."""
        self.register()
        self.assign("sensor", SENSOR)
        self.sensor(False)
        if light:
            self.assign("display", LIGHT)
            self.txack_pending()
        self.history.clear()
        return self

    def reserve(
        self,
        rid: str,
        start: timedelta,
        length: timedelta,
        request: str | None = None,
        grace_s: int | None = None,
    ) -> list[Envelope]:
        return self.command(
            cmd.CreateReservation,
            cmd.CreateReservationData(
                reservation_id=rid,
                request_id=request or f"req-{rid}",
                starts_at=self.now + start,
                ends_at=self.now + start + length,
                grace_s=grace_s,
            ),
        )

    def cancel(self, rid: str) -> list[Envelope]:
        return self.command(cmd.CancelReservation, cmd.CancelReservationData(reservation_id=rid))

    def override(self, state: str, until: timedelta | None = None) -> list[Envelope]:
        return self.command(
            cmd.SetOverride,
            cmd.SetOverrideData(
                state=state, reason="works", until=self.now + until if until else None
            ),
        )

    def tick(self) -> list[Envelope]:
        return self.feed(
            cmd.Tick(
                **self._env(
                    space_id=SPACE, source=Source(kind="timer"), data=cmd.TickData(due_at=self.now)
                )
            )
        )

    # --- devices ----------------------------------------------------------------------
    def sensor(self, occupied: bool | None, eui: str = SENSOR, f_cnt: int = 1) -> list[Envelope]:
        reading = dev.Reading(decoder="bosch_tps110", kind="parking_status", occupied=occupied)
        return self.feed(
            dev.UplinkObserved(
                **self._env(
                    dev_eui=eui,
                    source=Source(kind="mqtt", topic="application/x/device/y/event/up"),
                    data=dev.UplinkData(
                        device=DEVICE, f_port=1, f_cnt=f_cnt, data_b64="AQ==", reading=reading
                    ),
                )
            )
        )

    def light_status(self, colour: str, on: int = 255, off: int = 0) -> list[Envelope]:
        frame = colour_frame_hex(colour, on, off).payload
        status = dev.KuandoStatus(
            red=frame[0], blue=frame[1], green=frame[2], on=frame[3], off=frame[4]
        )
        reading = dev.Reading(decoder="kuando", kind="display_status", display=status)
        return self.feed(
            dev.UplinkObserved(
                **self._env(
                    dev_eui=LIGHT,
                    source=Source(kind="mqtt"),
                    data=dev.UplinkData(device=DEVICE, f_port=15, data_b64="AA==", reading=reading),
                )
            )
        )

    def txack(self, queue_item_id: str) -> list[Envelope]:
        return self.feed(
            dev.DownlinkTransmitted(
                **self._env(
                    dev_eui=LIGHT,
                    source=Source(kind="mqtt"),
                    data=dev.TxAckData(device=DEVICE, queue_item_id=queue_item_id),
                )
            )
        )

    def txack_pending(self) -> list[Envelope]:
        pending = self.state.display.pending_command_id
        assert pending is not None, "no downlink is pending"
        return self.txack(pending)

    def join(self, eui: str = LIGHT) -> list[Envelope]:
        return self.feed(
            dev.DeviceJoined(
                **self._env(
                    dev_eui=eui, source=Source(kind="mqtt"), data=dev.JoinedData(device=DEVICE)
                )
            )
        )

    def ack(self, queue_item_id: str, acknowledged: bool) -> list[Envelope]:
        return self.feed(
            dev.DownlinkAcknowledged(
                **self._env(
                    dev_eui=LIGHT,
                    source=Source(kind="mqtt"),
                    data=dev.AckData(
                        device=DEVICE, queue_item_id=queue_item_id, acknowledged=acknowledged
                    ),
                )
            )
        )

    # --- reading results --------------------------------------------------------------
    def refold(self) -> Space:
        return fold(self.history_all, space_id=SPACE)


def types(events: list[Envelope]) -> list[str]:
    return [e.type for e in events]


def states(events: list[Envelope]) -> list[tuple[str | None, str]]:
    return [
        (e.data.from_state, e.data.to_state)  # type: ignore[attr-defined]
        for e in events
        if e.type == "space.state_changed"
    ]


def frames(events: list[Envelope]) -> list[str]:
    return [e.data.frame_hex for e in events if e.type == "display.change_requested"]  # type: ignore[attr-defined]
