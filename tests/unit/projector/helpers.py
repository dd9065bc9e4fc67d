"""Turning the lot's events into what the projector reads, and a naive recomputation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from parkstream.domain.contract import encode
from parkstream.domain.envelope import Envelope
from parkstream.projector.activity import BayState, advance, plan
from parkstream.projector.records import Event, Incoming, read_event
from parkstream.projector.utilization import Tally, zone


def incoming(events: Iterable[Envelope], partition: int = 0, first: int = 0) -> list[Incoming]:
    return [
        Incoming(partition, first + n, (e.space_id or e.dev_eui or "").encode(), encode(e))
        for n, e in enumerate(events)
    ]


def read(events: Iterable[Envelope]) -> list[Event]:
    return [read_event(r) for r in incoming(events)]


def run_activity(batches: Iterable[list[Event]]) -> tuple[dict[tuple[str, str], BayState], Tally]:
    """The activity projection over batches, with a dict standing in for the tables."""
    states: dict[tuple[str, str], BayState] = {}
    inserted: set[str] = set()
    total = Tally()
    for batch in batches:
        p = plan(batch)
        ids = (
            {row[3] for row in p.actuations.of(p.actuations.sets["actuations"].spec)}
            if p.actuations.sets
            else set()
        )
        new = ids - inserted
        inserted |= new
        step = advance(states, p.steps, new)
        states.update(step.states)
        for key, cell in step.tally.hourly.items():
            acc = total.hourly.setdefault(key, [0] * len(cell))
            for i, v in enumerate(cell):
                acc[i] += v
        for key, cell in step.tally.daily.items():
            acc = total.daily.setdefault(key, [0] * len(cell))
            for i, v in enumerate(cell):
                acc[i] += v
    return states, total


def recompute(events: Iterable[Event]) -> Tally:
    """The rollups from scratch: each bay's state changes in order, interval by interval."""
    site: dict[tuple[str, str], tuple[str, str]] = {}
    changes: dict[tuple[str, str], list[Event]] = defaultdict(list)
    seen: set[str] = set()
    for e in events:
        key = (e.tenant_id or "", e.space_id or "")
        if e.type == "space.registered":
            site[key] = (e.data["site_id"], e.data.get("time_zone", "UTC"))
        elif e.type == "space.state_changed" and e.event_id not in seen:
            seen.add(e.event_id)
            changes[key].append(e)
    tally = Tally()
    for key, items in changes.items():
        site_id, tz = site.get(key, (None, "UTC"))
        items.sort(key=lambda e: (e.occurred_at, e.partition, e.offset))
        for this, nxt in zip(items, [*items[1:], None], strict=True):
            tally.change(
                *key,
                site_id,
                zone(tz),
                this.occurred_at,
                this.data["from_state"],
                this.data["to_state"],
            )
            if nxt is not None:
                tally.interval(
                    *key,
                    site_id,
                    zone(tz),
                    this.data["to_state"],
                    this.occurred_at,
                    nxt.occurred_at,
                )
    return tally


def nonzero(table: dict[object, list[int]]) -> dict[object, list[int]]:
    return {k: v for k, v in table.items() if any(v)}
