"""Run parkstream's processes as children, report and restart the ones that crash.

Children are started in their own session with a parent-death signal, so nothing is
left behind even if the supervisor itself is killed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from parkstream.harness.process import ManagedProcess, spawn

RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    process: ManagedProcess | None = None
    restarts: int = 0
    next_start: float = 0.0


@dataclass
class Supervisor:
    workdir: Path
    env: Mapping[str, str]
    report: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)

    def add(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        """A child running ``parkstream ARGS``; ``env`` adds to the supervisor's environment."""
        self.children.append(Child(name, [sys.executable, "-m", "parkstream", *args], env or {}))

    def log_path(self, child: Child) -> Path:
        return self.workdir / "logs" / f"{child.name}.log"

    def start_all(self) -> None:
        for child in self.children:
            self._start(child)

    def _start(self, child: Child) -> None:
        child.process = spawn(
            child.name,
            child.argv,
            cwd=self.workdir,
            log_path=self.log_path(child),
            env={**self.env, **child.env},
        )

    def poll(self) -> None:
        """Restart children that exited, with a growing delay between restarts."""
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is None:
                if now >= child.next_start:
                    self._start(child)
                continue
            if not process.exited():
                continue
            process.popen.poll()
            code = process.popen.returncode
            delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
            self.report(
                f"{child.name} exited with status {code}; restarting in {delay:.0f} s. "
                f"Last lines of {self.log_path(child)}:\n{process.log_tail(15)}"
            )
            process.stop()
            child.process = None
            child.restarts += 1
            child.next_start = now + delay

    def stop_all(self, timeout: float = 20.0) -> None:
        for child in reversed(self.children):
            if child.process is not None:
                child.process.stop(timeout=timeout)
                child.process = None
