"""A simulated parking lot: sensors and Kuando Busylights as ChirpStack v4 would report them.

:class:`Lot` is the whole simulation without I/O: an agenda of timed actions in
simulated minutes since the start, advanced by :meth:`Lot.advance`, which returns
the MQTT messages ChirpStack would publish meanwhile; :meth:`Lot.receive` takes a
``command/down`` message. The runner (:mod:`parkstream.simulate.runner`) moves
the simulated clock and does the publishing and subscribing.

**Time.** Simulated time only decides *when* things happen (arrivals follow the
daily curve of :mod:`parkstream.simulate.occupancy` at the simulated time of day).
The ``time`` fields of the messages are real wall-clock time, the ``wall``
argument of :meth:`Lot.advance`, as ChirpStack would write them at that moment:
the platform decides on ingest time itself and must not be fed a fake clock.

**Determinism.** Every draw comes from generators seeded with ``LotConfig.seed``:
one per bay for arrivals and departures (so a bay's schedule is exactly
:func:`parkstream.simulate.occupancy.bay_schedule` with ``random.Random(f"{seed}/bay/{i}")``),
one for device constants, one for faults (malformed messages, missed downlinks).
Deduplication ids include ``run_id`` (random unless given), so two runs never
repeat one.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Literal

from parkstream.simulate import malformed, messages, occupancy
from parkstream.simulate.lights import (
    OFF,
    Command,
    Ignore,
    Reaction,
    Refused,
    SendStatus,
    SetKeepAlive,
    ShowColour,
    encode_status,
    interpret,
    parse_command,
    parse_command_topic,
)
from parkstream.simulate.messages import SimDevice
from parkstream.simulate.sensors import DEFAULT_VENDOR_MIX, VENDORS, Frame, Report, Vendor

DEFAULT_APPLICATION_ID = "17c82e96-be03-4f38-aef3-f83d48582d97"
KUANDO_PROFILE = "Kuando Busylight IoT Omega EU868"
KUANDO_PORT = 15
START_SPREAD_MINUTES = 2.0  # devices join within this long after the start
MAX_BAYS = 0xFFFF


@dataclass(frozen=True, slots=True)
class LotConfig:
    """Everything about a simulated lot except the MQTT connection (that is ``Settings``).

    Minutes are simulated minutes; ``speed`` is simulated seconds per real second
    (60: a simulated minute per second). ``silent_bay`` is a bay index (negative
    counts from the end; None: no sensor falls silent); that bay's sensor says
    nothing from ``silence_after_minutes`` for ``silence_minutes``, then rejoins.
    Delays of the light's answers are in simulated seconds.
    """

    bays: int = 24
    seed: int = 1
    speed: float = 60.0
    start: time = time(7, 30)
    duration_minutes: float | None = None
    topic_prefix: str = ""
    application_id: str = DEFAULT_APPLICATION_ID
    miss_rate: float = 0.05
    malformed_rate: float = 0.002
    heartbeat_minutes: float = 60.0
    keepalive_minutes: float = 30.0
    silent_bay: int | None = -1
    silence_after_minutes: float = 60.0
    silence_minutes: float = 180.0
    vendors: tuple[str, ...] = DEFAULT_VENDOR_MIX
    txack_delay_s: float = 1.0
    status_delay_s: float = 2.0
    dwell: occupancy.DwellModel = field(default_factory=occupancy.DwellModel)

    def __post_init__(self) -> None:
        if not 1 <= self.bays <= MAX_BAYS:
            raise ValueError(f"bays must be 1..{MAX_BAYS}, got {self.bays}")
        if not (self.speed > 0 and math.isfinite(self.speed)):
            raise ValueError(f"speed must be a positive number, got {self.speed}")
        for name in ("miss_rate", "malformed_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be 0..1, got {getattr(self, name)}")
        for name in ("heartbeat_minutes", "keepalive_minutes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.duration_minutes is not None and not self.duration_minutes > 0:
            raise ValueError(f"duration_minutes must be positive, got {self.duration_minutes}")
        if min(self.silence_after_minutes, self.silence_minutes) < 0:
            raise ValueError("silence_after_minutes and silence_minutes must not be negative")
        if min(self.txack_delay_s, self.status_delay_s) < 0:
            raise ValueError("answer delays must not be negative")
        if not self.vendors or any(v not in VENDORS for v in self.vendors):
            raise ValueError(f"vendors must be some of {sorted(VENDORS)}, got {self.vendors}")
        if not self.application_id or any(c in self.application_id for c in "/+#"):
            raise ValueError(f"bad application id {self.application_id!r}")
        if any(c in self.topic_prefix for c in "+#"):
            raise ValueError(f"the topic prefix may not hold wildcards: {self.topic_prefix!r}")

    @property
    def start_minute(self) -> float:
        """The simulated start as minutes after midnight."""
        return self.start.hour * 60 + self.start.minute + self.start.second / 60

    @property
    def prefix(self) -> str:
        return self.topic_prefix.strip("/")

    def sensor_eui(self, index: int) -> str:
        """``a0`` + 6 hex digits of the seed + the bay number."""
        return f"a0{self.seed % 2**24:06x}{index + 1:08x}"

    def light_eui(self, index: int) -> str:
        """``2020204100`` (Kuando's range) + 2 hex digits of the seed + the bay number."""
        return f"2020204100{self.seed % 256:02x}{index + 1:04x}"

    def command_filter(self) -> str:
        """The topic filter of every command to this lot's application."""
        head = f"{self.prefix}/" if self.prefix else ""
        return f"{head}application/{self.application_id}/device/+/command/down"


@dataclass(frozen=True, slots=True)
class Bay:
    """A bay: its number (from 1), name, sensor, light and the sensor's vendor."""

    number: int
    name: str
    sensor_eui: str
    light_eui: str
    vendor: str


@dataclass(slots=True)
class Sensor:
    bay: int
    device: SimDevice
    vendor: Vendor
    occupied: bool
    rssi: int
    snr: float
    temperature_c: float
    since: float = 0.0
    f_cnt: int = 0
    session: int = 0
    started: bool = False
    silent: bool = False
    motion_count: int = 0

    @property
    def dev_eui(self) -> str:
        return self.device.dev_eui


@dataclass(slots=True)
class Light:
    """A Busylight; ``frame`` is the 5-byte ``[R, B, G, on, off]`` colour it shows now."""

    bay: int
    device: SimDevice
    rssi: int
    snr: float
    keepalive_minutes: float
    frame: bytes = OFF
    messages_received: int = 0
    messages_sent: int = 0
    f_cnt: int = 0
    f_cnt_down: int = 0
    session: int = 0
    started: bool = False

    @property
    def dev_eui(self) -> str:
        return self.device.dev_eui

    @property
    def frame_hex(self) -> str:
        return self.frame.hex()


EventKind = Literal["join", "up", "txack", "ack", "malformed"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One MQTT message ChirpStack would publish; ``detail`` says what it is, for logs."""

    kind: EventKind
    topic: str
    payload: bytes
    dev_eui: str
    detail: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of a received command: ``accepted`` means a txack is on its way."""

    outcome: Literal["accepted", "missed", "refused", "foreign"]
    detail: str = ""
    command_id: str | None = None
    dev_eui: str | None = None


@dataclass(slots=True)
class LotStats:
    produced: Counter[str] = field(default_factory=Counter)
    arrivals: int = 0
    departures: int = 0
    downlinks_received: int = 0
    answered: int = 0
    missed: int = 0
    refused: int = 0
    ignored: int = 0
    foreign: int = 0


# Agenda actions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _StartSensor:
    bay: int


@dataclass(frozen=True, slots=True)
class _StartLight:
    bay: int


@dataclass(frozen=True, slots=True)
class _Change:
    bay: int


@dataclass(frozen=True, slots=True)
class _Heartbeat:
    bay: int


@dataclass(frozen=True, slots=True)
class _KeepAlive:
    bay: int


@dataclass(frozen=True, slots=True)
class _Silence:
    bay: int
    silent: bool


@dataclass(frozen=True, slots=True)
class _Deliver:
    bay: int
    command: Command
    reaction: Reaction


@dataclass(frozen=True, slots=True)
class _Report:
    bay: int
    command: Command
    f_cnt_down: int


_Action = (
    _StartSensor | _StartLight | _Change | _Heartbeat | _KeepAlive | _Silence | _Deliver | _Report
)


class Lot:
    """The simulated devices and their agenda. Not thread-safe; one event loop drives it.

    Read what the lot shows through :attr:`sensors` and :attr:`lights` (keyed by
    dev EUI; ``lot.lights[eui].frame`` is the colour a light shows) and
    :attr:`bays` (in bay order).
    """

    def __init__(self, config: LotConfig, *, run_id: str | None = None) -> None:
        self.config = config
        self.run_id = run_id or uuid.uuid4().hex
        self.stats = LotStats()
        self._agenda: list[tuple[float, int, _Action]] = []
        self._seq = 0
        self._faults = random.Random(f"{config.seed}/faults")
        self._bay_rngs = [random.Random(f"{config.seed}/bay/{i}") for i in range(config.bays)]
        devices = random.Random(f"{config.seed}/devices")
        self._sensors: list[Sensor] = []
        self._lights: list[Light] = []
        bays: list[Bay] = []
        for i in range(config.bays):
            vendor = VENDORS[config.vendors[i % len(config.vendors)]]
            name = f"bay-{i + 1:03d}"
            tags = {"bay": name, "lot": "simulated"}
            sensor = Sensor(
                bay=i,
                device=SimDevice(
                    config.sensor_eui(i),
                    application_id=config.application_id,
                    profile_name=vendor.profile_name,
                    name=f"{name}-sensor",
                    tags=tags,
                ),
                vendor=vendor,
                occupied=occupancy.initially_occupied(self._bay_rngs[i], config.start_minute),
                rssi=devices.randint(-118, -70),
                snr=round(devices.uniform(-8.0, 10.0), 1),
                temperature_c=round(devices.uniform(6.0, 18.0), 1),
            )
            light = Light(
                bay=i,
                device=SimDevice(
                    config.light_eui(i),
                    application_id=config.application_id,
                    profile_name=KUANDO_PROFILE,
                    name=f"{name}-light",
                    device_class="CLASS_C",
                    tags=tags,
                ),
                rssi=devices.randint(-110, -60),
                snr=round(devices.uniform(-5.0, 12.0), 1),
                keepalive_minutes=config.keepalive_minutes,
            )
            self._sensors.append(sensor)
            self._lights.append(light)
            bays.append(Bay(i + 1, name, sensor.dev_eui, light.dev_eui, vendor.key))
            self._schedule(devices.uniform(0, START_SPREAD_MINUTES), _StartSensor(i))
            self._schedule(devices.uniform(0, START_SPREAD_MINUTES), _StartLight(i))
            first = occupancy.next_change(
                self._bay_rngs[i], 0.0, sensor.occupied, config.start_minute, config.dwell
            )
            self._schedule(first, _Change(i))
        self.bays: tuple[Bay, ...] = tuple(bays)
        self.sensors: dict[str, Sensor] = {s.dev_eui: s for s in self._sensors}
        self.lights: dict[str, Light] = {light.dev_eui: light for light in self._lights}
        if config.silent_bay is not None:
            silent = config.silent_bay % config.bays
            self._schedule(config.silence_after_minutes, _Silence(silent, True))
            end = config.silence_after_minutes + config.silence_minutes
            self._schedule(end, _Silence(silent, False))

    # Reading the lot ----------------------------------------------------------------------

    @property
    def occupied(self) -> int:
        """How many bays are occupied now (whether or not their sensor reported it)."""
        return sum(s.occupied for s in self._sensors)

    def next_due(self) -> float | None:
        """The elapsed minute of the next agenda entry, None when the agenda is empty."""
        return self._agenda[0][0] if self._agenda else None

    def clock_label(self, elapsed: float) -> str:
        """``day 1 07:30``: the simulated day and time of day ``elapsed`` minutes in."""
        total = int(self.config.start_minute + elapsed)
        day, minute = divmod(total, occupancy.DAY_MINUTES)
        return f"day {day + 1} {minute // 60:02d}:{minute % 60:02d}"

    # Driving the lot ----------------------------------------------------------------------

    def advance(self, until: float, wall: datetime) -> list[Outgoing]:
        """Run every agenda entry due at or before ``until``; the messages stamped ``wall``."""
        out: list[Outgoing] = []
        while self._agenda and self._agenda[0][0] <= until:
            at, _, action = heapq.heappop(self._agenda)
            out.extend(self._run(action, at, wall))
        for message in out:
            self.stats.produced[message.kind] += 1
        return out

    def receive(self, topic: str, payload: bytes, elapsed: float) -> Receipt:
        """Take a ``command/down`` message; an accepted one is answered via the agenda."""
        where = parse_command_topic(topic)
        light = self.lights.get(where.dev_eui) if where is not None else None
        if (
            where is None
            or light is None
            or where.prefix != self.config.prefix
            or where.application_id != self.config.application_id
        ):
            self.stats.foreign += 1
            return Receipt("foreign", f"not a command to a light of this lot: {topic}")
        self.stats.downlinks_received += 1
        command = parse_command(where.dev_eui, payload)
        if isinstance(command, Refused):
            self.stats.refused += 1
            return Receipt("refused", f"{command.reason}: {command.detail}", dev_eui=light.dev_eui)
        if self._faults.random() < self.config.miss_rate:
            self.stats.missed += 1
            return Receipt("missed", "lost on the air", command.id, light.dev_eui)
        reaction = interpret(command.f_port, command.data)
        delay = self.config.txack_delay_s / 60
        self._schedule(elapsed + delay, _Deliver(light.bay, command, reaction))
        return Receipt("accepted", type(reaction).__name__, command.id, light.dev_eui)

    # Internals ------------------------------------------------------------------------

    def _schedule(self, at: float, action: _Action) -> None:
        self._seq += 1
        heapq.heappush(self._agenda, (at, self._seq, action))

    def _run(self, action: _Action, at: float, wall: datetime) -> list[Outgoing]:
        match action:
            case _StartSensor(bay):
                return self._start_sensor(self._sensors[bay], at, wall)
            case _StartLight(bay):
                return self._start_light(self._lights[bay], at, wall)
            case _Change(bay):
                return self._change(self._sensors[bay], at, wall)
            case _Heartbeat(bay):
                return self._heartbeat(self._sensors[bay], at, wall)
            case _KeepAlive(bay):
                light = self._lights[bay]
                self._schedule(at + light.keepalive_minutes, _KeepAlive(bay))
                return self._light_status(light, wall, "keep-alive")
            case _Silence(bay, silent):
                return self._silence(self._sensors[bay], silent, at, wall)
            case _Deliver(bay, command, reaction):
                return self._deliver(self._lights[bay], command, reaction, at, wall)
            case _Report(bay, command, f_cnt_down):
                return self._report(self._lights[bay], command, f_cnt_down, wall)
        raise AssertionError(f"unknown agenda action {action!r}")  # pragma: no cover

    def _report_of(self, sensor: Sensor, at: float) -> Report:
        minute = self.config.start_minute + at
        swing = 4.0 * math.sin(2 * math.pi * (minute - 540) / occupancy.DAY_MINUTES)
        return Report(
            occupied=sensor.occupied,
            previous_state_minutes=at - sensor.since,
            temperature_c=sensor.temperature_c + swing,
            parking_id=(sensor.bay + 1) & 0xFF,
            motion_count=sensor.motion_count,
        )

    def _start_sensor(self, sensor: Sensor, at: float, wall: datetime) -> list[Outgoing]:
        sensor.started = True
        first_beat = at + self.config.heartbeat_minutes * self._phase(sensor.bay)
        self._schedule(first_beat, _Heartbeat(sensor.bay))
        if sensor.silent:
            return []
        return self._join_and_startup(sensor, at, wall)

    def _join_and_startup(self, sensor: Sensor, at: float, wall: datetime) -> list[Outgoing]:
        sensor.session += 1
        sensor.f_cnt = 0
        frame = sensor.vendor.startup(self._report_of(sensor, at))
        return [
            self._join(sensor.device, sensor.session, wall),
            *self._uplink(sensor.device, sensor, frame, wall, "startup"),
        ]

    def _phase(self, bay: int) -> float:
        """A deterministic share of a period (0.2..1) that staggers devices' periodic frames."""
        return 0.2 + 0.8 * random.Random(f"{self.config.seed}/phase/{bay}").random()

    def _change(self, sensor: Sensor, at: float, wall: datetime) -> list[Outgoing]:
        report = self._report_of(sensor, at)  # previous_state_minutes of the state ending now
        sensor.occupied = not sensor.occupied
        sensor.since = at
        if sensor.occupied:
            self.stats.arrivals += 1
            sensor.motion_count += 1
        else:
            self.stats.departures += 1
        rng = self._bay_rngs[sensor.bay]
        cfg = self.config
        self._schedule(
            occupancy.next_change(rng, at, sensor.occupied, cfg.start_minute, cfg.dwell),
            _Change(sensor.bay),
        )
        if not sensor.started or sensor.silent:
            return []
        status = Report(
            occupied=sensor.occupied,
            previous_state_minutes=report.previous_state_minutes,
            temperature_c=report.temperature_c,
            parking_id=report.parking_id,
            motion_count=sensor.motion_count,
        )
        detail = "arrival" if sensor.occupied else "departure"
        return self._uplink(sensor.device, sensor, sensor.vendor.status(status), wall, detail)

    def _heartbeat(self, sensor: Sensor, at: float, wall: datetime) -> list[Outgoing]:
        self._schedule(at + self.config.heartbeat_minutes, _Heartbeat(sensor.bay))
        if sensor.silent:
            return []
        frame = sensor.vendor.heartbeat(self._report_of(sensor, at))
        return self._uplink(sensor.device, sensor, frame, wall, "heartbeat")

    def _silence(self, sensor: Sensor, silent: bool, at: float, wall: datetime) -> list[Outgoing]:
        sensor.silent = silent
        if silent or not sensor.started:
            return []
        return self._join_and_startup(sensor, at, wall)  # back: it rejoins

    def _start_light(self, light: Light, at: float, wall: datetime) -> list[Outgoing]:
        light.started = True
        light.session += 1
        light.f_cnt = 0
        period = light.keepalive_minutes
        self._schedule(
            at + period * self._phase(self.config.bays + light.bay), _KeepAlive(light.bay)
        )
        # Class C: downlinks flow only after the first uplink following the join.
        return [
            self._join(light.device, light.session, wall),
            *self._light_status(light, wall, "startup"),
        ]

    def _light_status(self, light: Light, wall: datetime, detail: str) -> list[Outgoing]:
        light.messages_sent += 1
        payload = encode_status(
            frame=light.frame,
            messages_received=light.messages_received,
            messages_sent=light.messages_sent,
            rssi=light.rssi,
            snr=round(light.snr) + 30,
        )
        return self._uplink(light.device, light, Frame(KUANDO_PORT, payload), wall, detail)

    def _deliver(
        self, light: Light, command: Command, reaction: Reaction, at: float, wall: datetime
    ) -> list[Outgoing]:
        light.messages_received += 1
        f_cnt_down = light.f_cnt_down
        light.f_cnt_down += 1
        self.stats.answered += 1
        match reaction:
            case ShowColour(frame):
                light.frame = frame
            case SetKeepAlive(minutes):
                light.keepalive_minutes = float(minutes)
            case SendStatus():
                pass
            case Ignore():
                self.stats.ignored += 1
        report = _Report(light.bay, command, f_cnt_down)
        self._schedule(at + self.config.status_delay_s / 60, report)
        body = messages.txack(
            light.device, time=wall, queue_item_id=command.id, f_cnt_down=f_cnt_down
        )
        return [
            Outgoing(
                "txack",
                self._topic(light.device, "txack"),
                body,
                light.dev_eui,
                f"command {command.id} {command.data.hex()}",
            )
        ]

    def _report(
        self, light: Light, command: Command, f_cnt_down: int, wall: datetime
    ) -> list[Outgoing]:
        out = self._light_status(light, wall, f"status after command {command.id}")
        if command.confirmed:
            body = messages.ack(
                light.device,
                time=wall,
                queue_item_id=command.id,
                f_cnt_down=f_cnt_down,
                acknowledged=True,
                deduplication_id=self._dedup(light.device, light.f_cnt - 1, light.session),
            )
            out.append(
                Outgoing("ack", self._topic(light.device, "ack"), body, light.dev_eui, command.id)
            )
        return out

    def _topic(self, device: SimDevice, event: str) -> str:
        return device.topic(event, self.config.prefix)

    def _dedup(self, device: SimDevice, f_cnt: int, session: int) -> str:
        return messages.dedup_id(device, f_cnt, f"{self.run_id}/{session}")

    def _join(self, device: SimDevice, session: int, wall: datetime) -> Outgoing:
        dedup = messages.dedup_id(device, -1, f"{self.run_id}/{session}/join")
        body = messages.join(device, time=wall, deduplication_id=dedup)
        return Outgoing("join", self._topic(device, "join"), body, device.dev_eui, "join")

    def _uplink(
        self,
        device: SimDevice,
        radio: Sensor | Light,
        frame: Frame,
        wall: datetime,
        detail: str,
    ) -> list[Outgoing]:
        f_cnt = radio.f_cnt
        radio.f_cnt += 1
        body = messages.uplink(
            device,
            f_port=frame.f_port,
            payload=frame.payload,
            f_cnt=f_cnt,
            time=wall,
            deduplication_id=self._dedup(device, f_cnt, radio.session),
            rssi=radio.rssi,
            snr=radio.snr,
        )
        topic = self._topic(device, "up")
        out = [
            Outgoing(
                "up",
                topic,
                body,
                device.dev_eui,
                f"{detail} fPort {frame.f_port} {frame.payload.hex()}",
            )
        ]
        if self._faults.random() < self.config.malformed_rate:
            kind = malformed.pick(self._faults)
            out.append(
                Outgoing("malformed", topic, malformed.malformed(body, kind), device.dev_eui, kind)
            )
        return out
