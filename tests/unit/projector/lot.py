"""A car park driven through the pure decider: real space events for the projector's tests.

``Lot`` holds bays (tenant, site, time zone, sensor, light) and a clock; every helper feeds
the decider one input at ``now`` and keeps the events it emits, in order. ``scripted``
builds a reproducible stream with readings, reservations, overrides, silences and lights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from parkstream.domain import commands as cmd
from parkstream.domain import device_events as dev
from parkstream.domain import space_events as ev
from parkstream.domain.contract import encode
from parkstream.domain.decider import decide_and_evolve
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.space import Space, initial_state
from parkstream.domain.states import SpaceState

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
DEVICE = dev.DeviceInfo(device_profile_name="Bosch TPS110", application_id="app-1")


@dataclass
class BayInfo:
    tenant: str
    space_id: str
    site: str
    time_zone: str
    sensor: str
    light: str
    state: Space
    f_cnt: int = 0
    occupied: bool = False


@dataclass
class Lot:
    now: datetime = T0
    bays: dict[str, BayInfo] = field(default_factory=dict)
    events: list[Envelope] = field(default_factory=list)
    device_events: list[Envelope] = field(default_factory=list)  # what the bridge produced
    serial: int = 0

    # --- plumbing ----------------------------------------------------------------------
    def at(self, when: datetime) -> Lot:
        self.now = max(self.now, when)
        return self

    def advance(self, **delta: float) -> Lot:
        self.now += timedelta(**delta)
        return self

    def _base(self, source: Source) -> dict[str, Any]:
        self.serial += 1
        return {
            "event_id": f"in-{self.serial}",
            "occurred_at": self.now,
            "recorded_at": self.now,
            "source": source,
        }

    def feed(self, space_id: str, inp: Envelope) -> list[Envelope]:
        bay = self.bays[space_id]
        bay.state, out = decide_and_evolve(bay.state, inp, self.now)
        self.events.extend(out)
        return out

    def command(self, space_id: str, cls: type[Envelope], data: Any) -> list[Envelope]:
        bay = self.bays[space_id]
        inp = cls(
            **self._base(Source(kind="api")), tenant_id=bay.tenant, space_id=space_id, data=data
        )
        return self.feed(space_id, inp)

    def device(self, space_id: str, cls: type[Envelope], eui: str, data: Any) -> list[Envelope]:
        inp = cls(**self._base(Source(kind="mqtt")), dev_eui=eui, data=data)
        self.device_events.append(inp)
        return self.feed(space_id, inp)

    # --- bays ----------------------------------------------------------------------------
    def add_bay(
        self,
        space_id: str,
        *,
        tenant: str = "t-acme",
        site: str = "site-1",
        time_zone: str = "UTC",
        sensor: str | None = None,
        light: str | None = None,
        config: cmd.SpaceConfig | None = None,
    ) -> BayInfo:
        n = len(self.bays) + 1
        bay = BayInfo(
            tenant=tenant,
            space_id=space_id,
            site=site,
            time_zone=time_zone,
            sensor=sensor or f"a1b2c3d4{n:08x}",
            light=light or f"20202041{n:08x}",
            state=initial_state(space_id),
        )
        self.bays[space_id] = bay
        self.command(
            space_id,
            cmd.RegisterSpace,
            cmd.RegisterSpaceData(
                site_id=site,
                name=f"Bay {n}",
                code=f"B{n}",
                config=config or cmd.SpaceConfig(heartbeat_s=3600),
                time_zone=time_zone,
            ),
        )
        self.command(
            space_id, cmd.AssignDevice, cmd.AssignDeviceData(dev_eui=bay.sensor, role="sensor")
        )
        self.reading(space_id, False)
        self.command(
            space_id, cmd.AssignDevice, cmd.AssignDeviceData(dev_eui=bay.light, role="display")
        )
        self.txack(space_id)
        return bay

    def reading(self, space_id: str, occupied: bool | None) -> list[Envelope]:
        bay = self.bays[space_id]
        bay.f_cnt += 1
        if occupied is not None:
            bay.occupied = occupied
        reading = dev.Reading(
            decoder="bosch_tps110",
            kind="parking_status",
            occupied=occupied,
            battery_pct=max(0.0, 100.0 - bay.f_cnt / 10),
        )
        radio = dev.RadioInfo(
            rssi=-60 - bay.f_cnt % 40,
            snr=7.5 - bay.f_cnt % 9,
            gateway_ids=("gw-1", "gw-2")[: 1 + bay.f_cnt % 2],
            frequency=868_100_000,
            spreading_factor=7,
        )
        data = dev.UplinkData(
            device=DEVICE,
            f_port=1,
            f_cnt=bay.f_cnt,
            data_b64="AQ==",
            radio=radio,
            reading=reading,
        )
        return self.device(space_id, dev.UplinkObserved, bay.sensor, data)

    def status(self, space_id: str, battery_level: float | None, margin: int = 12) -> None:
        """The sensor answers DevStatusReq (the stream processor makes nothing of it)."""
        bay = self.bays[space_id]
        data = dev.StatusData(
            device=DEVICE,
            margin=margin,
            battery_level=battery_level,
            battery_level_unavailable=battery_level is None,
        )
        self.device_events.append(
            dev.DeviceStatusReported(
                **self._base(Source(kind="mqtt")), dev_eui=bay.sensor, data=data
            )
        )

    def txack(self, space_id: str) -> list[Envelope]:
        bay = self.bays[space_id]
        pending = bay.state.display.pending_command_id
        if pending is None:
            return []
        data = dev.TxAckData(device=DEVICE, queue_item_id=pending)
        return self.device(space_id, dev.DownlinkTransmitted, bay.light, data)

    def tick(self, space_id: str) -> list[Envelope]:
        inp = cmd.Tick(
            **self._base(Source(kind="timer")),
            space_id=space_id,
            data=cmd.TickData(due_at=self.now),
        )
        return self.feed(space_id, inp)

    def reserve(
        self, space_id: str, rid: str, start: timedelta, length: timedelta
    ) -> list[Envelope]:
        return self.command(
            space_id,
            cmd.CreateReservation,
            cmd.CreateReservationData(
                reservation_id=rid,
                request_id=f"req-{rid}",
                starts_at=self.now + start,
                ends_at=self.now + start + length,
            ),
        )

    def cancel(self, space_id: str, rid: str) -> list[Envelope]:
        return self.command(
            space_id, cmd.CancelReservation, cmd.CancelReservationData(reservation_id=rid)
        )

    def override(self, space_id: str, state: SpaceState, hours: float = 1.0) -> list[Envelope]:
        return self.command(
            space_id,
            cmd.SetOverride,
            cmd.SetOverrideData(
                state=state, reason="works", until=self.now + timedelta(hours=hours)
            ),
        )

    def clear_override(self, space_id: str) -> list[Envelope]:
        return self.command(space_id, cmd.ClearOverride, cmd.ClearOverrideData())

    def archive(self, space_id: str) -> list[Envelope]:
        return self.command(
            space_id, cmd.ArchiveSpace, cmd.ArchiveSpaceData(reason="rebuilt", force=True)
        )

    def orphan(self, eui: str) -> Envelope:
        self.serial += 1
        record = ev.OrphanDeviceSeen(
            event_id=f"orphan-{self.serial}",
            dev_eui=eui,
            occurred_at=self.now,
            recorded_at=self.now,
            source=Source(kind="kafka"),
            data=ev.OrphanDeviceSeenData(
                dev_eui=eui, device_profile_name="Browan", event_type="up"
            ),
        )
        self.events.append(record)
        return record

    # --- output ---------------------------------------------------------------------------
    def records(self) -> list[tuple[bytes, bytes]]:
        """(key, value) of every event as the worker would produce it."""
        return [((e.space_id or e.dev_eui or "").encode(), encode(e)) for e in self.events]

    def device_records(self) -> list[tuple[bytes, bytes]]:
        """(key, value) of every device event as the bridge would produce it."""
        return [((e.dev_eui or "").encode(), encode(e)) for e in self.device_events]


def scripted(
    bays: int = 6,
    hours: float = 30,
    seed: int = 11,
    start: datetime = T0,
    tenants: tuple[str, ...] = ("t-acme", "t-globex"),
    zones: tuple[str, ...] = ("Europe/Amsterdam", "America/New_York"),
) -> Lot:
    """A reproducible stream: bays on two tenants and sites, a few days of traffic."""
    rng = random.Random(seed)
    lot = Lot(now=start)
    ids = []
    for n in range(bays):
        space_id = f"bay-{n:03d}"
        lot.add_bay(
            space_id,
            tenant=tenants[n % len(tenants)],
            site=f"site-{n % len(zones)}",
            time_zone=zones[n % len(zones)],
        )
        ids.append(space_id)
    lot.orphan("ffff000000000001")
    end = start + timedelta(hours=hours)
    r = 0
    while lot.now < end:
        lot.advance(minutes=rng.choice([3, 7, 13, 29]))
        space_id = rng.choice(ids)
        roll = rng.random()
        bay = lot.bays[space_id]
        if roll < 0.6:
            lot.reading(space_id, not bay.occupied if rng.random() < 0.5 else bay.occupied)
        elif roll < 0.7:
            r += 1
            lot.reserve(
                space_id, f"r-{r}", timedelta(minutes=rng.choice([0, 10, 40])), timedelta(hours=1)
            )
        elif roll < 0.75:
            lot.override(space_id, SpaceState.MAINTENANCE, hours=0.5)
        elif roll < 0.8 and r:
            lot.cancel(space_id, f"r-{rng.randint(1, r)}")
        else:
            lot.tick(space_id)
        if rng.random() < 0.9:  # most downlinks go out at once; some wait for a resend
            lot.txack(space_id)
        if rng.random() < 0.05:
            lot.orphan(f"ffff0000000000{rng.randint(2, 9):02x}")
    for space_id in ids:  # every deadline due by the end
        lot.tick(space_id)
    return lot
