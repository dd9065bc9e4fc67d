"""Folding a batch of bay inputs into states and output records (no Kafka, no Faust).

The Faust agent, ``parkstream refold`` and the tests all use this, so what the worker
does to an input is the same everywhere: decode, decide, map events to output records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from parkstream.domain import cloudevents
from parkstream.domain import commands as cmd
from parkstream.domain import device_events as dev
from parkstream.domain.contract import ContractError, decode, encode
from parkstream.domain.deadletter import dead_letter
from parkstream.domain.decider import decide_and_evolve, downlink_for
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.space import Space, initial_state
from parkstream.domain.space_events import DisplayChangeRequested
from parkstream.worker.routing import registry_changes

INPUT_TYPES = frozenset(cls.TYPE for cls in (*cmd.COMMAND_TYPES, *dev.DEVICE_EVENT_TYPES))


@dataclass(frozen=True, slots=True)
class Output:
    """A record to produce: catalogue topic name, key, value, and Kafka headers (the
    CloudEvents attributes of a record on a public topic, none on internal topics)."""

    topic: str
    key: bytes
    value: bytes
    headers: cloudevents.Headers | None = None

    @classmethod
    def of(cls, topic: str, key: bytes, record: Envelope) -> Output:
        """``record`` on the public catalogue topic ``topic``, with its CloudEvents headers."""
        return cls(topic, key, encode(record), cloudevents.headers(record, topic))


@dataclass
class BatchResult:
    outputs: list[Output] = field(default_factory=list)
    states: dict[str, Space] = field(default_factory=dict)
    inputs_by_type: dict[str, int] = field(default_factory=dict)
    outputs_by_type: dict[str, int] = field(default_factory=dict)
    rejected: int = 0


def rejected_input(raw: bytes, source: Source, detail: str, at: datetime) -> Output:
    """The dead letter of an input the worker cannot use, keyed by its topic.

    Dated ``at`` (when it was written: a dead letter is a report, not an input)."""
    letter = dead_letter(
        stage="worker",
        reason="invalid_input",
        detail=detail,
        raw=raw,
        received_at=at,
        source=source,
        origin_topic=source.topic,
        origin_partition=source.partition,
        origin_offset=source.offset,
    )
    return Output.of("deadletter.v1", (source.topic or "").encode(), letter)


def outputs_for(events: list[Envelope], state: Space) -> list[Output]:
    """Space events keyed by bay; downlinks keyed by light; registry changes keyed by device."""
    out: list[Output] = []
    for e in events:
        key = (e.space_id or e.dev_eui or "").encode()
        out.append(Output.of("space-events.v1", key, e))
        if isinstance(e, DisplayChangeRequested):
            downlink = downlink_for(e, state)
            out.append(Output.of("downlinks.v1", downlink.dev_eui.encode(), downlink))
    for change in registry_changes(events):
        out.append(Output("worker-registry.v1", change.dev_eui.encode(), change.to_json()))
    return out


def fold_batch(
    records: Iterable[tuple[bytes, Source]],
    load: Callable[[str], Space | None],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BatchResult:
    """Decide every input in order; ``load`` gives the stored state of a bay not yet seen.

    ``now`` of each decision is the input's ``recorded_at``, so folding the same inputs
    again yields the same events, ids included.
    """
    result = BatchResult()
    states = result.states
    for raw, source in records:
        try:
            inp = decode(raw)
            if inp.type not in INPUT_TYPES:
                raise ContractError(f"{inp.type} is not an input of the space fold")
            if not inp.space_id:
                raise ContractError(f"{inp.type} has no space_id")
        except ContractError as exc:
            result.rejected += 1
            result.outputs.append(rejected_input(raw, source, str(exc), clock()))
            continue
        space_id = inp.space_id
        state = states.get(space_id) or load(space_id) or initial_state(space_id)
        state, events = decide_and_evolve(state, inp, inp.recorded_at, source)
        states[space_id] = state
        result.inputs_by_type[inp.type] = result.inputs_by_type.get(inp.type, 0) + 1
        for e in events:
            result.outputs_by_type[e.type] = result.outputs_by_type.get(e.type, 0) + 1
        result.outputs.extend(outputs_for(events, state))
    return result
