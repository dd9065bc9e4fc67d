"""Benchmark of the pure space decider: decided inputs per second on one core.

The workload is a car park of 1,000 registered bays, each with an occupancy sensor
and a light: a stream of sensor uplinks (mostly heartbeats repeating the bay's
occupancy, about 30 % changing it), txacks for the downlinks those changes request,
the timers' ticks at the bays' deadlines, and a few reservations and overrides. Every
input envelope is built before timing (a planning pass decides the stream once to learn
which downlinks are pending, so txacks carry real queue item ids); the timed loop only calls
``decide_and_evolve`` from the same initial states.

The figure is decided inputs per second (each input emits about 1.5 events; their
rate is reported too). The raw baseline is the same loop with a trivial fold (a dict
update per input), so the cost of the decider itself is visible.

    python -m bench.decider [events]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import math
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Result
from parkstream.domain import commands as cmd
from parkstream.domain import device_events as dev
from parkstream.domain.decider import decide_and_evolve
from parkstream.domain.effective import next_deadline
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.space import Space, initial_state
from parkstream.domain.states import SpaceState

GOAL = 200_000
BAYS = 1_000
TENANT = "t-bench"
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
STEP = timedelta(seconds=1)  # stream time between two inputs
DEVICE = dev.DeviceInfo(device_profile_name="Bosch TPS110", application_id="app-1")
MQTT = Source(kind="mqtt", topic="application/app-1/device/x/event/up")
API = Source(kind="api")
TIMER = Source(kind="timer")

# Share of the drawn inputs by kind. Uplinks visit the bays round-robin in a shuffled
# order (a heartbeat every half hour or so); txacks and the timers' ticks are scheduled.
MIX = (("uplink", 0.975), ("reservation", 0.015), ("override", 0.01))
TXACK_DELAY = (1, 10)  # inputs (1 to 10 s of stream time) between a request and its txack
TXACK_LOST = 0.02  # requests whose txack never comes: a timer tick triggers the resend
TIMER_HORIZON = timedelta(hours=2)  # the timers tick a bay at its next deadline this close
CHANGE_SHARE = 0.30  # uplinks that flip the bay's occupancy; the rest are heartbeats


def _sensor_eui(bay: int) -> str:
    return f"a1b2c3d4{bay:08x}"


def _light_eui(bay: int) -> str:
    return f"20202041{bay:08x}"


def _space_id(bay: int) -> str:
    return f"bay-{bay:04d}"


@dataclass
class _Stream:
    """Builds input envelopes with unique ids and a clock that moves forward."""

    rng: random.Random
    now: datetime = T0
    serial: int = 0
    inputs: list[tuple[int, Envelope, datetime]] = field(default_factory=list)

    def _base(self, source: Source) -> dict[str, Any]:
        self.serial += 1
        return {
            "event_id": f"in-{self.serial}",
            "occurred_at": self.now,
            "recorded_at": self.now,
            "source": source,
        }

    def command(self, cls: type[Envelope], bay: int, data: Any) -> Envelope:
        return cls(**self._base(API), tenant_id=TENANT, space_id=_space_id(bay), data=data)

    def device(self, cls: type[Envelope], eui: str, data: Any) -> Envelope:
        return cls(**self._base(MQTT), dev_eui=eui, data=data)

    def tick(self, bay: int) -> Envelope:
        data = cmd.TickData(due_at=self.now)
        return cmd.Tick(**self._base(TIMER), space_id=_space_id(bay), data=data)

    def uplink(self, bay: int, occupied: bool, f_cnt: int) -> Envelope:
        reading = dev.Reading(decoder="bosch_tps110", kind="parking_status", occupied=occupied)
        data = dev.UplinkData(
            device=DEVICE, f_port=1, f_cnt=f_cnt, data_b64="AQ==", reading=reading
        )
        return self.device(dev.UplinkObserved, _sensor_eui(bay), data)

    def txack(self, bay: int, queue_item_id: str) -> Envelope:
        data = dev.TxAckData(device=DEVICE, queue_item_id=queue_item_id, gateway_id="gw-1")
        return self.device(dev.DownlinkTransmitted, _light_eui(bay), data)


def _setup_inputs(stream: _Stream, bay: int) -> list[Envelope]:
    config = cmd.SpaceConfig(debounce_s=30.0 if bay % 5 == 0 else 0.0)
    return [
        stream.command(
            cmd.RegisterSpace,
            bay,
            cmd.RegisterSpaceData(
                site_id="site-1", name=f"Bay {bay}", code=f"B{bay}", config=config
            ),
        ),
        stream.command(
            cmd.AssignDevice,
            bay,
            cmd.AssignDeviceData(dev_eui=_sensor_eui(bay), role="sensor"),
        ),
        stream.command(
            cmd.AssignDevice,
            bay,
            cmd.AssignDeviceData(dev_eui=_light_eui(bay), role="display"),
        ),
        stream.uplink(bay, occupied=False, f_cnt=0),
    ]


def _ready_states(stream: _Stream) -> list[Space]:
    """Every bay registered, with a sensor that reported FREE and a light that confirmed it."""
    states = []
    for bay in range(BAYS):
        space = initial_state(_space_id(bay))
        for inp in _setup_inputs(stream, bay):
            space, _ = decide_and_evolve(space, inp, stream.now)
        pending = space.display.pending_command_id
        assert pending is not None
        space, _ = decide_and_evolve(space, stream.txack(bay, pending), stream.now)
        states.append(space)
    return states


@dataclass
class _Planner:
    """Draws the next input from what the bays are doing, as the field and the timers would.

    Each bay's sensor reports once per round (in a shuffled order); a downlink request is
    followed by its txack a few inputs later (unless lost); a bay's timer ticks it at its
    next deadline when that is near, as the worker's timers do.
    """

    stream: _Stream
    states: list[Space]
    occupied: list[bool] = field(default_factory=lambda: [False] * BAYS)
    f_cnt: list[int] = field(default_factory=lambda: [0] * BAYS)
    round: list[int] = field(default_factory=list)  # bays still to report this round
    scheduled: list[tuple[int, int, str]] = field(default_factory=list)  # (step, bay, kind)
    timers: dict[int, int] = field(default_factory=dict)  # bay -> step of its next tick

    def next_input(self, step: int) -> tuple[int, Envelope]:
        while self.scheduled and self.scheduled[0][0] <= step:
            due, bay, kind = heapq.heappop(self.scheduled)
            inp = self._scheduled(due, bay, kind)
            if inp is not None:
                return bay, inp
        rng = self.stream.rng
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == "uplink":
            return self._uplink()
        bay = rng.randrange(BAYS)
        if kind == "reservation":
            return bay, _reservation(self.stream, bay)
        return bay, _override(self.stream, bay, self.states[bay])

    def _scheduled(self, due: int, bay: int, kind: str) -> Envelope | None:
        if kind == "tick":
            if self.timers.get(bay) != due:
                return None  # the timer was moved since
            del self.timers[bay]
            return self.stream.tick(bay)
        pending = self.states[bay].display.pending_command_id
        return self.stream.txack(bay, pending) if pending is not None else None

    def _uplink(self) -> tuple[int, Envelope]:
        if not self.round:
            self.round = list(range(BAYS))
            self.stream.rng.shuffle(self.round)
        bay = self.round.pop()
        if self.stream.rng.random() < CHANGE_SHARE:
            self.occupied[bay] = not self.occupied[bay]
        self.f_cnt[bay] += 1
        return bay, self.stream.uplink(bay, self.occupied[bay], self.f_cnt[bay])

    def decided(self, step: int, bay: int, inp: Envelope) -> None:
        """Apply the input; schedule the txack of a requested downlink and the bay's timer."""
        now = self.stream.now
        self.states[bay], out = decide_and_evolve(self.states[bay], inp, now)
        requested = any(e.type == "display.change_requested" for e in out)
        if requested and self.stream.rng.random() >= TXACK_LOST:
            due = step + self.stream.rng.randint(*TXACK_DELAY)
            heapq.heappush(self.scheduled, (due, bay, "txack"))
        deadline = next_deadline(self.states[bay])
        # A passed deadline was applied by this input: next_deadline() still reports a
        # reserved-soon moment that changed nothing, as the bay's clock did not move.
        if deadline is None or deadline <= now or deadline - now > TIMER_HORIZON:
            self.timers.pop(bay, None)
        else:
            tick = step + max(1, math.ceil((deadline - now) / STEP))
            if self.timers.get(bay) != tick:
                self.timers[bay] = tick
                heapq.heappush(self.scheduled, (tick, bay, "tick"))


def _reservation(stream: _Stream, bay: int) -> Envelope:
    """A booking starting between five minutes ago and an hour from now."""
    starts = stream.now + timedelta(minutes=stream.rng.randint(-5, 60))
    data = cmd.CreateReservationData(
        reservation_id=f"r-{stream.serial}",
        request_id=f"q-{stream.serial}",
        starts_at=starts,
        ends_at=starts + timedelta(minutes=stream.rng.choice([30, 60, 120])),
    )
    return stream.command(cmd.CreateReservation, bay, data)


def _override(stream: _Stream, bay: int, space: Space) -> Envelope:
    """An hour of maintenance, or lifting the one in force."""
    if space.override is not None:
        return stream.command(cmd.ClearOverride, bay, cmd.ClearOverrideData())
    until = stream.now + timedelta(hours=1)
    data = cmd.SetOverrideData(state=SpaceState.MAINTENANCE, reason="cleaning", until=until)
    return stream.command(cmd.SetOverride, bay, data)


def build_workload(
    events: int, seed: int = 7
) -> tuple[list[Space], list[tuple[int, Envelope, datetime]]]:
    """Initial bay states and the input stream, planned by deciding it once (untimed)."""
    stream = _Stream(random.Random(seed))
    initial = _ready_states(stream)
    planner = _Planner(stream, list(initial))
    for step in range(events):
        stream.now += STEP
        bay, inp = planner.next_input(step)
        stream.inputs.append((bay, inp, stream.now))
        planner.decided(step, bay, inp)
    return initial, stream.inputs


def _time_decider(
    initial: list[Space], inputs: list[tuple[int, Envelope, datetime]]
) -> tuple[float, int]:
    states = list(initial)
    emitted = 0
    start = time.perf_counter()
    for bay, inp, now in inputs:
        states[bay], out = decide_and_evolve(states[bay], inp, now)
        emitted += len(out)
    return time.perf_counter() - start, emitted


def _time_trivial_fold(inputs: list[tuple[int, Envelope, datetime]]) -> float:
    """The same loop with a dict update per input instead of the decider."""
    last: dict[int, tuple[str, datetime]] = {}
    start = time.perf_counter()
    for bay, inp, now in inputs:
        last[bay] = (inp.event_id, now)
    return time.perf_counter() - start


@contextmanager
def _workload_frozen() -> Iterator[None]:
    """Keep the pre-built workload out of the garbage collector's scans while timing.

    A streaming worker holds a few inputs at a time; without this, every full collection
    would also walk the hundreds of thousands of envelopes built ahead for the benchmark.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


NAME = "decider"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=200_000, help="inputs to decide")


def run(args: argparse.Namespace) -> list[Result]:
    """The registry's entry: one table line, the trivial fold as the baseline."""
    figures = measure(args.events)
    return [
        Result(
            "decider (pure, no Kafka)",
            figures["figure"],
            "inputs/s",
            baseline=figures["trivial_fold_events_per_s"],
            note=f"goal >= {GOAL} inputs/s; baseline: a dict update per input",
        )
    ]


def measure(events: int = 200_000) -> dict[str, Any]:
    """Decided inputs per second over a pre-built stream of ``events`` inputs."""
    initial, inputs = build_workload(events)
    with _workload_frozen():
        seconds, emitted = _time_decider(initial, inputs)
        baseline = len(inputs) / _time_trivial_fold(inputs)
    figure = len(inputs) / seconds
    return {
        "name": "decider",
        "figure": round(figure),
        "unit": "events/s",
        "goal": f">= {GOAL}",
        "inputs": len(inputs),
        "emitted_events": emitted,
        "emitted_events_per_s": round(emitted / seconds),
        "seconds": round(seconds, 3),
        "trivial_fold_events_per_s": round(baseline),
        "decider_vs_trivial_fold": f"1/{baseline / figure:.0f}",
    }


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
