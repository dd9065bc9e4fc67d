"""Child processes of the services harness: spawn, wait until ready, stop, reap.

Every process is started in its own session (``start_new_session``) so that it
and anything it forks form one process group the harness can signal as a whole,
and so that a Ctrl-C in the terminal reaches only the harness, which then stops
its children in order. On Linux each child also gets a parent-death signal
(``prctl(PR_SET_PDEATHSIG)``): if the harness process is killed outright
(SIGKILL, OOM killer) the kernel stops the children too. Note that Linux ties
that signal to the *thread* that spawned the child, which is why the async API
spawns from a dedicated thread that lives as long as the services do.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

ServiceName = Literal["kafka", "postgres", "mqtt"]
ALL_SERVICES: tuple[ServiceName, ...] = ("kafka", "postgres", "mqtt")

LOOPBACK = "127.0.0.1"

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


class HarnessError(RuntimeError):
    """A service could not be started, reached or stopped."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"`` or ``"host"``) as a tuple."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else default_port
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host, int(port)


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{password}@", ":***@", 1)))


def run_async(factory: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60.0) -> T:
    """Run a coroutine to completion from synchronous code.

    It runs on a short-lived thread with its own event loop, so this works
    whether or not the calling thread already runs a loop (pytest fixtures,
    signal handlers, ``atexit``). Never spawn child processes from it: the
    thread ends right away, and with it their parent-death signal.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="parkstream-harness-async", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise HarnessError(f"gave up after {timeout:.0f} s on {factory}")
    if error:
        raise error[0]
    return result[0]


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, resolved in the parent (never dlopen after fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return fn


def _child_setup(death_signal: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` arming the parent-death signal (Linux only)."""
    prctl = _prctl()
    if death_signal is None or prctl is None:
        return None
    parent = os.getpid()

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal comes.
        if os.getppid() != parent:
            os.kill(os.getpid(), death_signal)

    return setup


@dataclass(eq=False)
class ManagedProcess:
    """A child process the harness started, and how to stop it."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: signal.Signals = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        """Whether the process has ended, without reaping it.

        Not reaping keeps its pid (and process group id) reserved until
        :meth:`stop`, so signalling the group can never hit a stranger.
        """
        if self.popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.popen.returncode is not None:  # reaped: the id may be reused
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop signal to the group, SIGKILL after ``timeout`` s, then reap.

        Safe to call again (also after being interrupted half-way).
        """
        if self.popen.returncode is not None:
            return
        if not self.exited():
            self._signal_group(self.stop_signal)
            if not self._wait_exit(timeout):
                self._signal_group(signal.SIGKILL)
                self._wait_exit(5.0)
        # Whatever the leader forked and left behind in its group goes too; the
        # leader is not reaped yet, so the group id still belongs to us.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5.0)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
    death_signal: signal.Signals | None = signal.SIGKILL,
) -> ManagedProcess:
    """Start ``argv`` in a new session with stdout/stderr going to ``log_path``.

    ``death_signal`` is delivered to the child if the spawning thread dies;
    ``stop_signal`` is what :meth:`ManagedProcess.stop` sends first.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            popen = subprocess.Popen(  # noqa: S603 - argv is built by the harness
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_child_setup(death_signal),
                user=user,
                close_fds=True,
            )
        except OSError as exc:
            raise HarnessError(f"cannot start {name} ({argv[0]}): {exc}") from exc
    return ManagedProcess(name=name, popen=popen, log_path=log_path, stop_signal=stop_signal)


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    process: ManagedProcess | None = None,
    interval: float = 0.05,
) -> None:
    """Poll ``check`` until it is true; fail early if ``process`` dies."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if process is not None and process.exited():
            raise HarnessError(
                f"{what}: {process.name} (pid {process.pid}) exited during start-up; "
                f"log {process.log_path}:\n{process.log_tail()}"
            )
        if time.monotonic() >= deadline:
            tail = ""
            if process is not None:
                tail = f"; log {process.log_path}:\n{process.log_tail()}"
            raise HarnessError(f"{what}: not ready after {timeout:.0f} s{tail}")
        time.sleep(interval)


def minimal_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The few variables a service binary needs; nothing of ours leaks into it."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.setdefault("PATH", os.defpath)
    if extra:
        env.update(extra)
    return env


@dataclass(eq=False)
class StartedService:
    """One service as the harness provides it: where it is and how to undo it."""

    service: ServiceName
    url: str
    description: str
    processes: list[ManagedProcess] = field(default_factory=list)
    cleanup: Callable[[], None] | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self, timeout: float = 5.0) -> None:
        """Undo what was started: run the cleanup, then stop the processes."""
        errors: list[str] = []
        if self.cleanup is not None:
            cleanup, self.cleanup = self.cleanup, None
            try:
                cleanup()
            except Exception as exc:
                errors.append(f"{self.service}: {exc}")
        for process in reversed(self.processes):
            process.stop(timeout)
        if errors:
            raise HarnessError("; ".join(errors))
