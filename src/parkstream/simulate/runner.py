"""Running a :class:`~parkstream.simulate.lot.Lot` against an MQTT broker, as ChirpStack would.

The shell around the lot: it moves the simulated clock, publishes what the lot
produces (QoS 1, in order, each message kept until the broker acknowledged it) and
hands ``command/down`` messages to :meth:`Lot.receive`. The broker connection comes
from ``Settings`` (``mqtt_url``, credentials, TLS); a lost connection is retried
with exponential backoff while simulated time keeps running (messages wait in an
outbox of bounded size; the oldest are dropped when it is full).

The run ends when ``stop`` is set or, with ``LotConfig.duration_minutes``, when the
simulated clock reaches it; the outbox is then flushed for a few seconds and a
summary is logged and returned.

Usage from other code (``parkstream dev``, tests)::

    lot = Lot(LotConfig(bays=8, speed=600, topic_prefix="t-1"))
    summary = await run_lot(settings, lot, stop)
    lot.lights[lot.bays[0].light_eui].frame  # the colour the first bay's light shows
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt

from parkstream.bridge.mqtt import make_client, parse_mqtt_url
from parkstream.config import Settings
from parkstream.logging import get_logger
from parkstream.simulate.clock import SimClock
from parkstream.simulate.lot import Lot, LotConfig, LotStats, Outgoing

log = get_logger("parkstream.simulate")

DEFAULT_OUTBOX_LIMIT = 100_000
DEFAULT_DRAIN_TIMEOUT_S = 5.0
SUMMARY_EVERY_MINUTES = 60.0


@dataclass
class Backoff:
    """0.2 s, 0.4 s, ... up to 10 s between connection attempts; reset once connected."""

    first: float = 0.2
    cap: float = 10.0
    current: float = 0.0

    def next(self) -> float:
        self.current = self.first if self.current == 0 else min(self.current * 2, self.cap)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


@dataclass(frozen=True, slots=True)
class LotSummary:
    """What a run did. ``published`` counts messages the broker acknowledged, by kind."""

    simulated_minutes: float
    published: dict[str, int]
    dropped: int
    arrivals: int
    departures: int
    downlinks_received: int
    answered: int
    missed: int
    refused: int
    ignored: int
    foreign: int = 0
    reconnects: int = 0
    produced: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        stats: LotStats,
        *,
        simulated_minutes: float,
        published: Counter[str],
        dropped: int,
        reconnects: int,
    ) -> LotSummary:
        return cls(
            simulated_minutes=round(simulated_minutes, 1),
            published=dict(sorted(published.items())),
            dropped=dropped,
            arrivals=stats.arrivals,
            departures=stats.departures,
            downlinks_received=stats.downlinks_received,
            answered=stats.answered,
            missed=stats.missed,
            refused=stats.refused,
            ignored=stats.ignored,
            foreign=stats.foreign,
            reconnects=reconnects,
            produced=dict(sorted(stats.produced.items())),
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LotRunner:
    """One run of a lot. ``ready`` is set once commands are subscribed (first connection)."""

    def __init__(
        self,
        settings: Settings,
        lot: Lot | LotConfig,
        *,
        stop: asyncio.Event | None = None,
        ready: asyncio.Event | None = None,
        wall_clock: Callable[[], datetime] = _utcnow,
        outbox_limit: int = DEFAULT_OUTBOX_LIMIT,
        drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.lot = lot if isinstance(lot, Lot) else Lot(lot)
        self.config = self.lot.config
        self.stop = stop or asyncio.Event()
        self.ready = ready or asyncio.Event()
        self.client_id = f"parkstream-simulate-{self.lot.run_id[:12]}"
        self.published: Counter[str] = Counter()
        self.dropped = 0
        self.reconnects = 0
        self._wall_clock = wall_clock
        self._outbox_limit = outbox_limit
        self._drain_timeout_s = drain_timeout_s
        self._outbox: deque[Outgoing] = deque()
        self._pending = asyncio.Event()  # the outbox has something
        self._drained = asyncio.Event()  # the outbox is empty and nothing is in flight
        self._drained.set()
        self._wake = asyncio.Event()  # the agenda changed, or stop was set
        self._connected = False
        self._clock: SimClock | None = None
        self._failure: BaseException | None = None

    async def run(self) -> LotSummary:
        """Simulate until ``stop`` or the configured duration; return the summary."""
        cfg = self.config
        self._clock = SimClock(cfg.speed)
        log.info(
            "lot started",
            bays=cfg.bays,
            speed=cfg.speed,
            seed=cfg.seed,
            sim_time=self.lot.clock_label(0),
            duration_minutes=cfg.duration_minutes,
            application_id=cfg.application_id,
            topic_prefix=cfg.prefix,
            broker=self._broker(),
        )
        forward = asyncio.create_task(self._forward_stop(), name="simulate-stop")
        connection = asyncio.create_task(self._connection(), name="simulate-mqtt")
        try:
            elapsed = await self._simulate()
            await self._drain()
        finally:
            for task in (connection, forward):
                task.cancel()
            await asyncio.gather(connection, forward, return_exceptions=True)
        if self._failure is not None:
            raise self._failure
        summary = LotSummary.of(
            self.lot.stats,
            simulated_minutes=elapsed,
            published=self.published,
            dropped=self.dropped + len(self._outbox),
            reconnects=self.reconnects,
        )
        log.info(
            "lot stopped",
            sim_time=self.lot.clock_label(elapsed),
            simulated_minutes=summary.simulated_minutes,
            published=summary.published,
            dropped=summary.dropped,
            arrivals=summary.arrivals,
            departures=summary.departures,
            downlinks_received=summary.downlinks_received,
            answered=summary.answered,
            missed=summary.missed,
            refused=summary.refused,
            ignored=summary.ignored,
        )
        return summary

    # The simulated clock --------------------------------------------------------------

    async def _simulate(self) -> float:
        assert self._clock is not None
        end = self.config.duration_minutes
        summary_at = SUMMARY_EVERY_MINUTES
        last = _Snapshot.of(self.lot.stats, self.published)
        now = 0.0
        while not self.stop.is_set():
            now = self._clock.elapsed()
            if end is not None:
                now = min(now, end)
            self._wake.clear()
            self._emit(self.lot.advance(now, self._wall_clock()))
            if now >= summary_at:
                last = self._hourly(now, last)
                summary_at = (now // SUMMARY_EVERY_MINUTES + 1) * SUMMARY_EVERY_MINUTES
            if end is not None and now >= end:
                break
            due = [t for t in (self.lot.next_due(), end, summary_at) if t is not None]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._clock.real_seconds_until(min(due)))
        return now

    def _hourly(self, now: float, last: _Snapshot) -> _Snapshot:
        current = _Snapshot.of(self.lot.stats, self.published)
        log.info(
            "lot summary",
            sim_time=self.lot.clock_label(now),
            occupied=self.lot.occupied,
            bays=self.config.bays,
            arrivals=current.arrivals - last.arrivals,
            departures=current.departures - last.departures,
            published=current.published - last.published,
            downlinks=current.downlinks - last.downlinks,
            outbox=len(self._outbox),
        )
        return current

    async def _forward_stop(self) -> None:
        await self.stop.wait()
        self._wake.set()

    def _emit(self, messages: list[Outgoing]) -> None:
        for message in messages:
            self._outbox.append(message)
            if len(self._outbox) > self._outbox_limit:
                lost = self._outbox.popleft()
                self.dropped += 1
                log.debug("outbox full, message dropped", kind=lost.kind, dev_eui=lost.dev_eui)
        if messages:
            self._drained.clear()
            self._pending.set()

    async def _drain(self) -> None:
        if self._drained.is_set():
            return
        if not self._connected:
            log.warning("not connected: unpublished messages are dropped", count=len(self._outbox))
            return
        try:
            await asyncio.wait_for(self._drained.wait(), self._drain_timeout_s)
        except TimeoutError:
            log.warning("outbox not flushed in time", count=len(self._outbox))

    # MQTT -----------------------------------------------------------------------------

    def _broker(self) -> str:
        endpoint = parse_mqtt_url(self.settings.mqtt_url)
        return f"{endpoint.host}:{endpoint.port}"

    async def _connection(self) -> None:
        try:
            await self._connect_forever()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug: end the run and report it from run()
            self._failure = exc
            self.stop.set()

    async def _connect_forever(self) -> None:
        backoff = Backoff()
        topic = self.config.command_filter()
        while True:
            client = make_client(self.settings, client_id=self.client_id, clean_session=True)
            error = "the MQTT session ended"
            try:
                async with client:
                    await client.subscribe(topic, qos=1)
                    self._connected = True
                    backoff.reset()
                    log.info("connected", broker=self._broker(), subscribed=topic)
                    self.ready.set()
                    await self._session(client)
            except (aiomqtt.MqttError, OSError) as exc:
                error = str(exc) or type(exc).__name__
            finally:
                self._connected = False
            delay = backoff.next()
            self.reconnects += 1
            log.warning("broker unavailable", error=error, retry_in=delay)
            await asyncio.sleep(delay)

    async def _session(self, client: aiomqtt.Client) -> None:
        listener = asyncio.create_task(self._listen(client), name="simulate-listen")
        publisher = asyncio.create_task(self._publish(client), name="simulate-publish")
        try:
            done, _ = await asyncio.wait({listener, publisher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (listener, publisher):
                task.cancel()
            await asyncio.gather(listener, publisher, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
        raise aiomqtt.MqttError("the MQTT session ended")

    async def _publish(self, client: aiomqtt.Client) -> None:
        while True:
            while not self._outbox:
                self._drained.set()
                self._pending.clear()
                await self._pending.wait()
            message = self._outbox.popleft()
            try:
                await client.publish(message.topic, message.payload, qos=1)
            except BaseException:
                self._outbox.appendleft(message)  # published again after a reconnect
                raise
            self.published[message.kind] += 1
            log.debug(
                "published",
                kind=message.kind,
                dev_eui=message.dev_eui,
                detail=message.detail,
                topic=message.topic,
            )

    async def _listen(self, client: aiomqtt.Client) -> None:
        assert self._clock is not None
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            receipt = self.lot.receive(message.topic.value, bytes(payload), self._clock.elapsed())
            level = log.info if receipt.outcome in ("refused", "missed") else log.debug
            level(
                f"command {receipt.outcome}",
                dev_eui=receipt.dev_eui,
                command_id=receipt.command_id,
                detail=receipt.detail,
            )
            self._wake.set()


@dataclass(frozen=True, slots=True)
class _Snapshot:
    arrivals: int
    departures: int
    published: int
    downlinks: int

    @classmethod
    def of(cls, stats: LotStats, published: Counter[str]) -> _Snapshot:
        return cls(
            stats.arrivals, stats.departures, sum(published.values()), stats.downlinks_received
        )


async def run_lot(
    settings: Settings,
    lot: Lot | LotConfig,
    stop: asyncio.Event,
    *,
    ready: asyncio.Event | None = None,
) -> LotSummary:
    """Run ``lot`` (or a new lot of that config) until ``stop`` is set or its duration ends.

    ``settings`` gives the MQTT connection only. Pass a :class:`Lot` to read it while
    it runs (``lot.lights[eui].frame``, ``lot.sensors[eui].occupied``, ``lot.stats``);
    ``ready`` is set once the lot listens for commands.
    """
    return await LotRunner(settings, lot, stop=stop, ready=ready).run()
