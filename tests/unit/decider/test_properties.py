"""Properties of the decider over random input sequences."""

from __future__ import annotations

from datetime import timedelta
from itertools import combinations
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkstream.domain import commands as cmd
from parkstream.domain import contract
from parkstream.domain.evolve import fold
from parkstream.domain.space import Space

from .bay import SPACE, Bay

OVERRIDABLE = ["OUT_OF_ORDER", "MAINTENANCE", "BLOCKED", "FREE", "OCCUPIED", "RESERVED"]

step = st.one_of(
    st.tuples(st.just("sensor"), st.sampled_from([True, False, None])),
    st.tuples(
        st.just("reserve"),
        st.tuples(
            st.sampled_from(["r1", "r2", "r3", "r4"]),
            st.integers(-120, 600),
            st.integers(-30, 1600),
            st.sampled_from(["k1", "k2", "k3", "k4", "k5"]),
        ),
    ),
    st.tuples(st.just("cancel"), st.sampled_from(["r1", "r2", "r3"])),
    st.tuples(st.just("override"), st.tuples(st.sampled_from(OVERRIDABLE), st.integers(-10, 300))),
    st.tuples(st.just("clear"), st.none()),
    st.tuples(st.just("tick"), st.none()),
    st.tuples(st.just("txack"), st.none()),
    st.tuples(st.just("join"), st.none()),
    st.tuples(st.just("nack"), st.none()),
    st.tuples(st.just("status"), st.sampled_from(["00FF00", "FF0000", "FF3200"])),
    st.tuples(st.just("archive"), st.booleans()),
    st.tuples(st.just("restore"), st.none()),
)
program = st.lists(st.tuples(st.integers(0, 240), step), max_size=40)
config = st.builds(
    cmd.SpaceConfig,
    heartbeat_s=st.sampled_from([600, 3600]),
    debounce_s=st.sampled_from([0.0, 30.0]),
    display_resend_s=st.sampled_from([30, 600]),
)


def run(
    cfg: cmd.SpaceConfig, prog: list[tuple[int, tuple[str, Any]]], bay_cls: type[Bay] = Bay
) -> Bay:
    bay = bay_cls(config=cfg)
    bay.register()
    bay.assign("sensor", "a1b2c3d4e5f60001")
    bay.assign("display", "2020204100c30a01")
    for minutes, (op, arg) in prog:
        bay.at(minutes=minutes)
        if op == "sensor":
            bay.sensor(arg)
        elif op == "reserve":
            rid, start, length, key = arg
            bay.reserve(rid, timedelta(minutes=start), timedelta(minutes=length), request=key)
        elif op == "cancel":
            bay.cancel(arg)
        elif op == "override":
            state, until = arg
            bay.override(state, until=timedelta(minutes=until) if until > 0 else None)
        elif op == "clear":
            bay.command(cmd.ClearOverride, cmd.ClearOverrideData())
        elif op == "tick":
            bay.tick()
        elif op == "txack" and bay.state.display.pending_command_id:
            bay.txack_pending()
        elif op == "nack" and bay.state.display.pending_command_id:
            bay.ack(bay.state.display.pending_command_id, acknowledged=False)
        elif op == "join":
            bay.join()
        elif op == "status":
            bay.light_status(arg)
        elif op == "archive":
            bay.command(cmd.ArchiveSpace, cmd.ArchiveSpaceData(force=arg))
        elif op == "restore":
            bay.command(cmd.RestoreSpace, cmd.RestoreSpaceData())
    return bay


def all_events(bay: Bay) -> list[Any]:
    return bay.history


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(config, program)
def test_the_state_equals_the_fold_of_the_events(cfg: cmd.SpaceConfig, prog: Any) -> None:
    bay = run(cfg, prog)
    assert fold(bay.history, space_id=SPACE) == bay.state


@FAST
@given(config, program)
def test_deciding_is_deterministic(cfg: cmd.SpaceConfig, prog: Any) -> None:
    first, second = run(cfg, prog), run(cfg, prog)
    assert [contract.encode(e) for e in first.history] == [
        contract.encode(e) for e in second.history
    ]


@FAST
@given(config, program)
def test_every_event_round_trips_through_json(cfg: cmd.SpaceConfig, prog: Any) -> None:
    bay = run(cfg, prog)
    decoded = [contract.decode(contract.encode(e)) for e in bay.history]
    assert decoded == bay.history
    assert fold(decoded, space_id=SPACE) == bay.state


@FAST
@given(config, program)
def test_no_two_live_reservations_of_a_bay_ever_overlap(cfg: cmd.SpaceConfig, prog: Any) -> None:
    bay = Bay(config=cfg)
    bay.register()
    seen: list[Space] = []
    for minutes, (op, arg) in prog:
        bay.at(minutes=minutes)
        if op == "reserve":
            rid, start, length, key = arg
            bay.reserve(rid, timedelta(minutes=start), timedelta(minutes=length), request=key)
        elif op == "cancel":
            bay.cancel(arg)
        else:
            bay.tick()
        seen.append(bay.state)
    for state in seen:
        for a, b in combinations(state.reservations, 2):
            assert not a.overlaps(b.starts_at, b.ends_at), (a, b)


@FAST
@given(config, program)
def test_event_ids_are_unique(cfg: cmd.SpaceConfig, prog: Any) -> None:
    bay = run(cfg, prog)
    ids = [e.event_id for e in bay.history]
    assert len(ids) == len(set(ids))
