"""What the bridge remembers across restarts: its dedup window and device -> application map.

Saved atomically (write, fsync, rename) every few seconds and at shutdown. Losing the
last few seconds after a crash only lets a redelivered message through again, with the
same event id as the first time, which consumers drop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from parkstream.ingest.dedup import DedupWindow

STATE_FILE = "bridge-state.json"
MAX_APPLICATIONS = 1_000_000


@dataclass
class BridgeState:
    dedup: DedupWindow
    applications: dict[str, str] = field(default_factory=dict)

    def learn_application(self, dev_eui: str, application_id: str) -> None:
        if self.applications.get(dev_eui) != application_id:
            if len(self.applications) >= MAX_APPLICATIONS:
                self.applications.pop(next(iter(self.applications)))
            self.applications[dev_eui] = application_id

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / STATE_FILE
        tmp = target.with_suffix(".tmp")
        body = orjson.dumps(
            {"version": 1, "dedup": self.dedup.snapshot(), "applications": self.applications}
        )
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    @classmethod
    def load(
        cls, directory: Path, *, max_entries: int, max_age_s: float, now: float
    ) -> BridgeState:
        dedup = DedupWindow(max_entries=max(1, max_entries), max_age_s=max_age_s)
        state = cls(dedup=dedup)
        path = directory / STATE_FILE
        try:
            raw = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return state
        except (OSError, orjson.JSONDecodeError):
            return state  # a damaged file only costs us duplicate suppression
        if isinstance(raw, dict):
            entries = raw.get("dedup") or []
            dedup.restore(((str(k), float(t)) for k, t in entries), now=now)
            apps = raw.get("applications") or {}
            state.applications = {str(k): str(v) for k, v in apps.items()}
        return state
