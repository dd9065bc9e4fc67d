"""The worker's batch fold and routing, without Kafka."""

from __future__ import annotations

from datetime import UTC, datetime

from parkstream.domain import cloudevents
from parkstream.domain import commands as cmd
from parkstream.domain.contract import decode, encode
from parkstream.domain.envelope import Source
from parkstream.worker.fold import fold_batch
from parkstream.worker.routing import Assignment, RegistryChange, apply_change, registry_changes

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SRC = Source(kind="kafka", topic="parkstream.worker-space-inputs.v1", partition=0, offset=7)


def command(cls: type, data: object, n: int) -> bytes:
    return encode(
        cls(
            event_id=f"c{n}",
            tenant_id="t",
            space_id="bay-1",
            occurred_at=T0,
            recorded_at=T0,
            source=Source(kind="api"),
            data=data,
        )
    )


def test_a_bay_registered_and_given_a_light_yields_events_a_downlink_and_a_registry_change() -> (
    None
):
    inputs = [
        command(cmd.RegisterSpace, cmd.RegisterSpaceData(site_id="s", name="B", code="B1"), 1),
        command(
            cmd.AssignDevice, cmd.AssignDeviceData(dev_eui="2020204100c30a01", role="display"), 2
        ),
    ]
    result = fold_batch(((raw, SRC) for raw in inputs), lambda _s: None)
    topics = [o.topic for o in result.outputs]
    assert topics.count("space-events.v1") == 4  # registered, state, assigned, display request
    assert topics.count("downlinks.v1") == 1
    assert topics.count("worker-registry.v1") == 1
    downlink = decode(next(o.value for o in result.outputs if o.topic == "downlinks.v1"))
    assert downlink.dev_eui == "2020204100c30a01"
    assert result.states["bay-1"].display.dev_eui == "2020204100c30a01"


def test_an_input_the_fold_cannot_use_becomes_a_dead_letter_and_the_rest_goes_on() -> None:
    inputs = [
        b"{not json",
        command(cmd.RegisterSpace, cmd.RegisterSpaceData(site_id="s", name="B", code="B1"), 1),
    ]
    result = fold_batch(((raw, SRC) for raw in inputs), lambda _s: None)
    assert result.rejected == 1
    letter = decode(next(o.value for o in result.outputs if o.topic == "deadletter.v1"))
    assert letter.data.reason == "invalid_input"  # type: ignore[attr-defined]
    assert letter.data.origin_offset == 7  # type: ignore[attr-defined]
    assert result.states["bay-1"].registered


def test_a_device_moved_to_another_bay_stays_there_when_the_old_bay_lets_go() -> None:
    moved = Assignment("a1b2c3d4e5f60001", "bay-2", "t", "sensor")
    assert apply_change(moved, RegistryChange("a1b2c3d4e5f60001", "bay-1", None)) == moved
    assert apply_change(moved, RegistryChange("a1b2c3d4e5f60001", "bay-2", None)) is None
    assert (
        RegistryChange.from_json(RegistryChange("x", "bay-2", moved).to_json()).assignment == moved
    )
    assert registry_changes([]) == []


def test_records_for_public_topics_carry_their_cloudevents_headers_internal_ones_none() -> None:
    inputs = [
        b"{not json",
        command(cmd.RegisterSpace, cmd.RegisterSpaceData(site_id="s", name="B", code="B1"), 1),
        command(
            cmd.AssignDevice, cmd.AssignDeviceData(dev_eui="2020204100c30a01", role="display"), 2
        ),
    ]
    result = fold_batch(((raw, SRC) for raw in inputs), lambda _s: None)
    public = {"space-events.v1", "downlinks.v1", "deadletter.v1"}
    assert {o.topic for o in result.outputs} == public | {"worker-registry.v1"}
    for out in result.outputs:
        if out.topic not in public:
            assert out.headers is None
            continue
        record = decode(out.value)
        attrs = cloudevents.attributes(out.headers)
        assert cloudevents.check(attrs, record) == [], out.topic
        assert attrs["dataschema"].endswith(f"/{out.topic}/{record.type}.v1.json")
