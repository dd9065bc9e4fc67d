"""``parkstream services up`` in a subprocess: it starts everything, and leaves nothing behind.

The ``PARKSTREAM_*`` variables are removed from the subprocess's environment so
it provides every service itself. Two set-ups: what the harness picks by
default (here: Tansu, a database on the local PostgreSQL server, Mosquitto), and
the fallbacks (an ``initdb``-ed PostgreSQL of its own, amqtt).
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest

from parkstream.harness import (
    ENV_VARS,
    WORKDIR_PREFIX,
    HarnessError,
    Services,
    ServicesHarness,
    start_services,
)
from parkstream.harness.kafka import bootstrap_answers
from parkstream.harness.mqtt import mqtt_answers, parse_mqtt_url
from parkstream.harness.postgres import drop_database, postgres_answers
from parkstream.harness.process import free_port, port_open, run_async, split_host_port

pytestmark = pytest.mark.integration

SETUPS = {
    "defaults": [],
    "fallbacks": ["--postgres", "embedded", "--mqtt", "amqtt"],
}


@dataclass
class Running:
    process: subprocess.Popen[str]
    env: dict[str, str]
    children: list[psutil.Process] = field(default_factory=list)

    def ports(self) -> list[int]:
        ports = [
            split_host_port(self.env[ENV_VARS["kafka"]], 9092)[1],
            parse_mqtt_url(self.env[ENV_VARS["mqtt"]])[1],
        ]
        pg_port = urlsplit(self.env[ENV_VARS["postgres"]]).port or 5432
        if pg_port != 5432:  # the machine's own server stays, of course
            ports.append(pg_port)
        return ports


def pump_lines(process: subprocess.Popen[str]) -> tuple[queue.Queue[str | None], threading.Thread]:
    """Lines of the process's stdout, on a queue (None at the end)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def read_exports(
    process: subprocess.Popen[str], lines: queue.Queue[str | None], within: float
) -> dict[str, str]:
    """The ``export NAME=value`` lines ``services up`` prints, once all three arrived."""
    env: dict[str, str] = {}
    deadline = time.monotonic() + within
    while set(ENV_VARS.values()) - env.keys():
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no export lines within {within} s; got {env}") from None
        if line is None:
            raise AssertionError(f"services up exited ({process.wait()}) after printing {env}")
        words = shlex.split(line)
        assert words[0] == "export", line
        name, _, value = words[1].partition("=")
        env[name] = value
    return env


@contextlib.contextmanager
def services_up(tmp_path: Path, setup: str) -> Iterator[Running]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    with open(tmp_path / "services-up.stderr", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "parkstream", "services", "up", *SETUPS[setup]],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        lines, pump = pump_lines(process)
        try:
            exported = read_exports(process, lines, within=90)
            children = psutil.Process(process.pid).children(recursive=True)
            yield Running(process=process, env=exported, children=children)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            pump.join(10)
            assert process.stdout is not None
            process.stdout.close()


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # dead, waiting for init to reap it
    except psutil.NoSuchProcess:
        return True


def wait_all_gone(procs: list[psutil.Process], within: float) -> list[psutil.Process]:
    deadline = time.monotonic() + within
    while True:
        alive = [p for p in procs if not gone(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def assert_answering(running: Running) -> None:
    env = running.env
    assert bootstrap_answers(env[ENV_VARS["kafka"]]), env
    assert postgres_answers(env[ENV_VARS["postgres"]]), env
    assert mqtt_answers(env[ENV_VARS["mqtt"]]), env


def harness_workdirs(owner_pid: int) -> list[Path]:
    found = []
    for path in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        with contextlib.suppress(OSError, ValueError):
            if int((path / "owner.pid").read_text().strip()) == owner_pid:
                found.append(path)
    return found


def database_exists(url: str) -> bool:
    """Whether the database of ``url`` still exists on the local server."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()

    async def query() -> bool:
        conn = await asyncpg.connect(admin, timeout=10)
        try:
            return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
        finally:
            await conn.close()

    return run_async(query)


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_sigterm_stops_everything_it_started(tmp_path: Path, setup: str) -> None:
    with services_up(tmp_path, setup) as running:
        assert_answering(running)
        names = sorted(p.name() for p in running.children)
        expected = {"defaults": {"tansu", "mosquitto"}, "fallbacks": {"tansu", "postgres"}}
        assert expected[setup] <= set(names), names
        workdirs = harness_workdirs(running.process.pid)
        assert len(workdirs) == 1

        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=30) == 0

        assert wait_all_gone(running.children, within=5) == []
        assert not any(port_open("127.0.0.1", port) for port in running.ports())
        assert not workdirs[0].exists()
        db_url = running.env[ENV_VARS["postgres"]]
        if urlsplit(db_url).port == 5432:
            assert not database_exists(db_url), "the session's database was not dropped"


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_sigkill_leaves_no_orphan_broker(tmp_path: Path, setup: str) -> None:
    with services_up(tmp_path, setup) as running:
        assert_answering(running)
        running.process.kill()
        running.process.wait(timeout=10)

        # The parent-death signal stops the brokers even though nobody cleaned up.
        assert wait_all_gone(running.children, within=10) == []
        assert not any(port_open("127.0.0.1", port) for port in running.ports())

        # What only a clean stop could undo is left: tidy it up for the machine.
        db_url = running.env[ENV_VARS["postgres"]]
        if urlsplit(db_url).port == 5432:
            parts = urlsplit(db_url)
            drop_database(parts._replace(path="/postgres").geturl(), parts.path.lstrip("/"))
        for workdir in harness_workdirs(running.process.pid):
            shutil.rmtree(workdir, ignore_errors=True)


async def test_async_api_starts_and_stops_in_the_background() -> None:
    async with start_services(environ={}, need=("kafka", "mqtt")) as services:
        assert services.started == ["kafka", "mqtt"]
        assert services.database_url == ""
        assert bootstrap_answers(services.kafka_bootstrap)
        assert mqtt_answers(services.mqtt_url)
        processes = [psutil.Process(pid) for pid in services.pids.values()]
    assert wait_all_gone(processes, within=5) == []
    assert services.workdir is not None
    assert not services.workdir.exists()


def test_configured_services_are_used_not_started(services: Services) -> None:
    environ = {name: services.url(service) for service, name in ENV_VARS.items()}
    with ServicesHarness(environ) as configured:
        assert configured.started == []
        assert configured.pids == {}
        assert configured.as_env() == services.as_env()


def test_an_unreachable_configured_service_fails_clearly() -> None:
    port = free_port()  # nothing listens there
    harness = ServicesHarness(
        {"PARKSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}, need=("kafka",), timeout=1
    )
    with pytest.raises(HarnessError, match="PARKSTREAM_KAFKA_BOOTSTRAP"):
        harness.start()
