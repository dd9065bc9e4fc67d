"""The schemas directory: generate, drift, publish, immutability, and breaking changes refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from parkstream.domain.contract import TOPIC_TYPES
from parkstream.domain.envelope import Envelope, Record
from parkstream.domain.space_events import (
    SensorReadingAccepted,
    SensorReadingAcceptedData,
    SpaceArchived,
    SpaceArchivedData,
    SpaceRegistered,
    SpaceRegisteredData,
    SpaceStateChanged,
)
from parkstream.domain.states import SpaceState
from parkstream.schemas.generate import (
    DIALECT,
    PublishError,
    SchemaStore,
    render,
)

REPO_SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
TopicTypes = Mapping[str, Sequence[type[Envelope]]]


def replacing(*models: type[Envelope]) -> TopicTypes:
    """The real topic catalogue with each of ``models`` in place of the type it redefines."""
    by_type = {model.TYPE: model for model in models}
    return {
        topic: tuple(by_type.get(cls.TYPE, cls) for cls in types)
        for topic, types in TOPIC_TYPES.items()
    }


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A copy of the committed schemas directory, with its published baseline."""
    root = tmp_path / "schemas"
    shutil.copytree(REPO_SCHEMAS, root)
    return root


# --- models that change a published type ------------------------------------------------


class ArchivedDataWithOperator(SpaceArchivedData):
    archived_by: str | None = Field(default=None, description="Who archived the bay.")


class ArchivedWithOperator(SpaceArchived):
    data: ArchivedDataWithOperator


class RegisteredDataWithoutCode(Record):  # `code` removed
    site_id: str
    name: str
    config: Any


class RegisteredWithoutCode(SpaceRegistered):
    data: RegisteredDataWithoutCode  # type: ignore[assignment]


class ReadingWithIntOccupancy(SensorReadingAcceptedData):
    occupied: int  # type: ignore[assignment]  # was bool


class AcceptedWithIntOccupancy(SensorReadingAccepted):
    data: ReadingWithIntOccupancy


class RegisteredDataWithFloor(SpaceRegisteredData):
    floor: int  # a new required field


class RegisteredWithFloor(SpaceRegistered):
    data: RegisteredDataWithFloor


class StateChangedV2Data(Record):
    to_state: SpaceState


class StateChangedV2(Envelope):
    type: Literal["space.state_changed"] = "space.state_changed"
    version: int = Field(default=2, ge=1)
    tenant_id: str
    space_id: str
    data: StateChangedV2Data


def upcast_state_changed(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "version": 2, "data": {"to_state": raw["data"]["to_state"]}}


# --- generate ---------------------------------------------------------------------------


def test_generate_writes_one_schema_per_record_type_of_every_topic_an_index_and_asyncapi(
    tmp_path: Path,
) -> None:
    store = SchemaStore(tmp_path)
    store.generate()

    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    expected = sorted(
        [
            f"{topic}/{cls.TYPE}.v{cls.VERSION}.json"
            for topic, ts in TOPIC_TYPES.items()
            for cls in ts
        ]
        + ["asyncapi.json", "index.json"]
    )
    assert written == expected
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["topics"]["space-events.v1"]["space.registered"]["current"] == {
        "$id": "https://parkstream.dev/schemas/space-events.v1/space.registered.v1.json",
        "path": "space-events.v1/space.registered.v1.json",
        "version": 1,
    }


def test_a_generated_schema_is_draft_2020_12_with_sorted_keys_and_a_trailing_newline(
    tmp_path: Path,
) -> None:
    SchemaStore(tmp_path).generate()
    text = (tmp_path / "space-events.v1/space.state_changed.v1.json").read_text()
    doc = json.loads(text)

    assert doc["$schema"] == DIALECT
    assert doc["$id"].endswith("/space-events.v1/space.state_changed.v1.json")
    assert text == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert doc["properties"]["type"]["const"] == "space.state_changed"
    assert doc["properties"]["version"]["const"] == 1


def test_every_field_encode_writes_is_required_defaults_included(tmp_path: Path) -> None:
    SchemaStore(tmp_path).generate()
    doc = json.loads((tmp_path / "space-events.v1/space.archived.v1.json").read_text())

    assert {"type", "version", "causation_id", "dev_eui"} <= set(doc["required"])
    assert doc["$defs"]["SpaceArchivedData"]["required"] == ["reason", "cancelled_reservation_ids"]


def test_generate_is_deterministic_and_idempotent(tmp_path: Path) -> None:
    store = SchemaStore(tmp_path)
    store.generate()
    first = {p: p.read_bytes() for p in tmp_path.rglob("*.json")}

    assert store.generate() == []
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.json")} == first


def test_drift_lists_missing_changed_and_stale_files(tmp_path: Path) -> None:
    store = SchemaStore(tmp_path)
    store.generate()
    (tmp_path / "downlinks.v1/downlink.requested.v1.json").unlink()
    (tmp_path / "space-events.v1/space.updated.v1.json").write_text("{}\n")
    (tmp_path / "space-events.v1/space.renamed.v1.json").write_text("{}\n")

    assert store.check() == [
        f"{tmp_path}/downlinks.v1/downlink.requested.v1.json: missing",
        f"{tmp_path}/space-events.v1/space.updated.v1.json: differs from the models",
        f"{tmp_path}/space-events.v1/space.renamed.v1.json: no model produces it",
    ]
    store.generate()
    assert store.check() == []


# --- publish ----------------------------------------------------------------------------


def test_publish_copies_every_current_schema_once(tmp_path: Path) -> None:
    store = SchemaStore(tmp_path)
    published = store.publish()

    assert len(published) == sum(len(ts) for ts in TOPIC_TYPES.values())
    copy = tmp_path / "published/space-events.v1/space.registered.v1.r1.json"
    assert copy.read_text() == (tmp_path / "space-events.v1/space.registered.v1.json").read_text()
    assert store.publish() == []
    assert store.check() == []


def test_the_repository_starts_with_a_published_baseline() -> None:
    manifest = json.loads((REPO_SCHEMAS / "published/manifest.json").read_text())
    published = {(e["topic"], e["type"], e["version"]) for e in manifest["published"]}

    assert published >= {
        (topic, cls.TYPE, cls.VERSION) for topic, ts in TOPIC_TYPES.items() for cls in ts
    }


def test_a_changed_published_file_is_refused(published: Path) -> None:
    target = published / "published/space-events.v1/space.registered.v1.r1.json"
    target.write_text(target.read_text().replace('"title": "SpaceRegistered"', '"title": "X"'))
    store = SchemaStore(published)

    assert store.check() == [f"{target}: changed after publication (published files are immutable)"]
    with pytest.raises(PublishError, match="immutable"):
        store.publish()


def test_a_deleted_or_unlisted_published_file_is_refused(published: Path) -> None:
    deleted = published / "published/downlinks.v1/downlink.requested.v1.r1.json"
    deleted.unlink()
    stray = published / "published/space-events.v1/space.registered.v1.r9.json"
    stray.write_text("{}\n")

    assert SchemaStore(published).check() == [
        f"{deleted}: published but missing",
        f"{stray}: not in published/manifest.json",
    ]


def test_a_new_optional_field_is_published_as_a_new_revision(published: Path) -> None:
    store = SchemaStore(published, replacing(ArchivedWithOperator))
    current = published / "space-events.v1/space.archived.v1.json"

    assert store.check() == [
        f"{published}/asyncapi.json: differs from what the topic catalogue and the schemas give "
        "(a topic or a schema changed without the document)",
        f"{current}: differs from the models",
    ]
    assert store.publish() == [f"{published}/published/space-events.v1/space.archived.v1.r2.json"]
    assert store.check() == []
    data = json.loads(current.read_text())["$defs"]["ArchivedDataWithOperator"]
    assert "archived_by" in data["properties"]
    assert data["required"] == ["reason", "cancelled_reservation_ids"]  # older records lack it
    assert (published / "published/space-events.v1/space.archived.v1.r1.json").exists()


def test_removing_an_added_field_breaks_the_revision_that_published_it(published: Path) -> None:
    SchemaStore(published, replacing(ArchivedWithOperator)).publish()

    problems = SchemaStore(published).check()

    assert (
        "space.archived v1 (space-events.v1) breaks published r2: $.data.archived_by: "
        "field removed (or renamed): consumers of the old schema read it"
    ) in problems
    assert not any("published r1" in p for p in problems)


# --- the breaking-change test -----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "violation"),
    [
        (
            RegisteredWithoutCode,
            "space.registered v1 (space-events.v1) breaks published r1: $.data.code: "
            "field removed (or renamed): consumers of the old schema read it",
        ),
        (
            AcceptedWithIntOccupancy,
            "space.sensor_reading_accepted v1 (space-events.v1) breaks published r1: "
            "$.data.occupied: type changed from boolean to integer",
        ),
        (
            RegisteredWithFloor,
            "space.registered v1 (space-events.v1) breaks published r1: $.data.floor: "
            "new required field: older records do not carry it",
        ),
    ],
    ids=["removed-field", "changed-type", "new-required-field"],
)
def test_check_and_publish_refuse_a_breaking_change_to_a_published_schema(
    published: Path, model: type[Envelope], violation: str
) -> None:
    store = SchemaStore(published, replacing(model))
    before = sorted((published / "published").rglob("*"))

    assert violation in store.check()
    with pytest.raises(PublishError) as refused:
        store.publish()
    assert violation in str(refused.value)
    assert sorted((published / "published").rglob("*")) == before


def test_a_new_version_needs_an_upcaster_from_every_published_version(published: Path) -> None:
    without = SchemaStore(published, replacing(StateChangedV2), upcasters={})

    assert (
        "space.state_changed v2 (space-events.v1): no upcaster from v1 to v2 "
        "in parkstream.domain.contract.UPCASTERS"
    ) in without.check()

    with_upcaster = SchemaStore(
        published,
        replacing(StateChangedV2),
        upcasters={("space.state_changed", 1): upcast_state_changed},
    )
    assert with_upcaster.publish() == [
        f"{published}/published/space-events.v1/space.state_changed.v2.r1.json"
    ]
    assert with_upcaster.check() == []
    assert not (published / "space-events.v1/space.state_changed.v1.json").exists()
    assert (published / "published/space-events.v1/space.state_changed.v1.r1.json").exists()
    index = json.loads((published / "index.json").read_text())
    entry = index["topics"]["space-events.v1"]["space.state_changed"]
    assert entry["current"]["version"] == 2
    assert [(p["version"], p["revision"]) for p in entry["published"]] == [(1, 1), (2, 1)]


def test_a_published_type_that_no_model_writes_is_refused(published: Path) -> None:
    topics = {
        topic: tuple(cls for cls in types if cls is not SpaceStateChanged)
        for topic, types in TOPIC_TYPES.items()
    }
    problems = SchemaStore(published, topics).check()

    assert (
        "space.state_changed (space-events.v1) was published but no model writes it: "
        "record types are never removed, renamed or moved"
    ) in problems


def test_render_is_the_one_canonical_text() -> None:
    assert render({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == (
        '{\n  "a": {\n    "c": "é",\n    "d": [\n      1,\n      2\n    ]\n  },\n  "b": 1\n}\n'
    )
