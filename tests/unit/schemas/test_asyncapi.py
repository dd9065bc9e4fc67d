"""The AsyncAPI document: what it says about each topic, drift, and the real parser's verdict."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from parkstream.catalogue import TopicSpec, load_catalogue
from parkstream.cli import schemas as schemas_cli
from parkstream.domain.contract import TOPIC_TYPES, to_dict
from parkstream.domain.envelope import Envelope
from parkstream.domain.space_events import SpaceStateChanged
from parkstream.schemas import asyncapi
from parkstream.schemas.generate import SchemaStore, SchemaStoreError

from ..domain.strategies import RECORD_CLASSES, records
from .test_store import ArchivedWithOperator, StateChangedV2, replacing, upcast_state_changed

REPO = Path(__file__).resolve().parents[3]
REPO_SCHEMAS = REPO / "schemas"
VALIDATOR_DIR = REPO / "tools" / "asyncapi-validate"
DOC: dict[str, Any] = json.loads((REPO_SCHEMAS / "asyncapi.json").read_text())
ANY_STATES = "['FREE'"
DRIFTED = (
    "asyncapi.json: differs from what the topic catalogue and the schemas give "
    "(a topic or a schema changed without the document)"
)


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    """A copy of the committed schemas directory, AsyncAPI document included."""
    root = tmp_path / "schemas"
    shutil.copytree(REPO_SCHEMAS, root)
    return root


def payload_validator(doc: dict[str, Any], message: str) -> Draft202012Validator:
    """A validator of one message's payload, resolving references within the document."""
    payload_ref = doc["components"]["messages"][message]["payload"]["$ref"]
    return Draft202012Validator({**doc, "$ref": payload_ref})


# --- what the document says -------------------------------------------------------------


def test_every_public_topic_is_a_channel_at_its_prefixed_address_with_its_catalogue_settings() -> (
    None
):
    public = {spec.name: spec for spec in load_catalogue() if spec.public}

    assert set(DOC["channels"]) == set(public) == set(TOPIC_TYPES)
    for name, spec in public.items():
        channel = DOC["channels"][name]
        kafka = channel["bindings"]["kafka"]
        assert channel["address"] == f"{{prefix}}.{name}"
        assert channel["parameters"]["prefix"] == {"$ref": "#/components/parameters/prefix"}
        assert kafka["partitions"] == spec.partitions
        assert kafka["replicas"] == spec.replication_factor
        assert kafka["x-key"] == spec.key
        assert kafka["topicConfiguration"]["cleanup.policy"] == [spec.config["cleanup.policy"]]
    assert DOC["components"]["parameters"]["prefix"]["default"] == "parkstream"
    assert DOC["servers"]["kafka"]["protocol"] == "kafka"


def test_parkstream_sends_every_public_topic_but_receives_the_commands() -> None:
    actions = {op["channel"]["$ref"]: op["action"] for op in DOC["operations"].values()}

    assert actions == {
        "#/channels/device-events.v1": "send",
        "#/channels/space-commands.v1": "receive",
        "#/channels/space-events.v1": "send",
        "#/channels/downlinks.v1": "send",
        "#/channels/deadletter.v1": "send",
    }
    receive = DOC["operations"]["receiveSpaceCommandsV1"]
    assert len(receive["messages"]) == len(TOPIC_TYPES["space-commands.v1"])


def test_each_record_type_is_a_message_with_its_schema_key_and_cloudevents_headers() -> None:
    index = json.loads((REPO_SCHEMAS / "index.json").read_text())

    for topic, types in TOPIC_TYPES.items():
        channel = DOC["channels"][topic]
        assert set(channel["messages"]) == {f"{cls.TYPE}.v{cls.VERSION}" for cls in types}
        for cls in types:
            mid = f"{cls.TYPE}.v{cls.VERSION}"
            message = DOC["components"]["messages"][mid]
            standalone = json.loads((REPO_SCHEMAS / f"{topic}/{mid}.json").read_text())
            embedded = DOC["components"]["schemas"][mid]
            assert message["name"] == cls.TYPE
            assert message["payload"] == {"$ref": f"#/components/schemas/{mid}"}
            assert embedded["x-schema-id"] == index["topics"][topic][cls.TYPE]["current"]["$id"]
            assert embedded["properties"].keys() == standalone["properties"].keys()
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
            shared, constants = message["headers"]["allOf"]
            assert shared == {"$ref": "#/components/schemas/cloudevents-headers"}
            assert constants["properties"] == {
                "ce_type": {"type": "string", "const": f"dev.parkstream.{cls.TYPE}.v1"},
                "ce_schemaversion": {"type": "string", "const": "1"},
                "ce_dataschema": {"type": "string", "const": standalone["$id"]},
            }
    headers = DOC["components"]["schemas"]["cloudevents-headers"]
    assert set(headers["properties"]) == {
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "ce_dataschema",
        "ce_schemaversion",
        "content-type",
    }
    assert "ce_subject" not in headers["required"]


def test_the_key_binding_says_which_field_keys_the_record() -> None:
    def key(mid: str) -> str:
        description: str = DOC["components"]["messages"][mid]["bindings"]["kafka"]["key"][
            "description"
        ]
        return description

    assert key("space.state_changed.v1").startswith("The bay (`space_id`)")
    assert "without a bay" not in key("space.state_changed.v1")
    assert key("device.orphan_seen.v1").endswith(
        "A record without a bay is keyed by its `dev_eui`."
    )
    assert key("downlink.requested.v1").startswith("The device EUI (`dev_eui`")
    assert "data.origin_topic" in key("deadletter.recorded.v1")


@pytest.mark.parametrize(
    "topic_and_cls",
    [pytest.param((topic, cls), id=f"{topic}:{cls.TYPE}") for topic, cls in RECORD_CLASSES],
)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_encoded_record_validates_against_its_embedded_payload_schema(
    topic_and_cls: tuple[str, type[Envelope]], data: st.DataObject
) -> None:
    _topic, cls = topic_and_cls
    record = data.draw(records(cls, {}))
    validator = payload_validator(DOC, f"{cls.TYPE}.v{cls.VERSION}")

    assert [e.message for e in validator.iter_errors(to_dict(record))] == []


@settings(max_examples=10, deadline=None)
@given(record=records(SpaceStateChanged, {}))
def test_an_embedded_payload_schema_refuses_what_its_standalone_schema_refuses(
    record: Envelope,
) -> None:
    standalone = Draft202012Validator(
        json.loads((REPO_SCHEMAS / "space-events.v1/space.state_changed.v1.json").read_text())
    )
    embedded = payload_validator(DOC, "space.state_changed.v1")
    bad = to_dict(record)
    bad["data"]["to_state"] = "VACANT"
    bad["version"] = 2

    def problems(validator: Draft202012Validator) -> list[tuple[str, str]]:
        return sorted((e.json_path, e.message) for e in validator.iter_errors(bad))

    assert problems(embedded) == problems(standalone)
    assert ("$.data.to_state", "'VACANT' is not one of " + ANY_STATES) in [
        (path, message[: len("'VACANT' is not one of ") + len(ANY_STATES)])
        for path, message in problems(embedded)
    ]


def test_every_example_validates_against_its_message_payload_and_headers() -> None:
    """The AsyncAPI parser does not check examples against their message; this does."""
    examples = {
        mid: message["examples"]
        for mid, message in DOC["components"]["messages"].items()
        if "examples" in message
    }

    assert set(examples) == {
        "device.uplink_observed.v1",
        "space.state_changed.v1",
        "downlink.requested.v1",
        "space.set_override.v1",
    }
    for mid, found in examples.items():
        payload = payload_validator(DOC, mid)
        headers = Draft202012Validator(
            {**DOC, "$ref": f"#/components/messages/{mid}/headers"},
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        for example in found:
            assert [e.message for e in payload.iter_errors(example["payload"])] == [], mid
            assert [e.message for e in headers.iter_errors(example["headers"])] == [], mid
            assert example["headers"]["ce_id"] == example["payload"]["event_id"]
    bad = {**examples["space.state_changed.v1"][0]["headers"], "ce_type": "dev.parkstream.x.v1"}
    assert not Draft202012Validator(
        {**DOC, "$ref": "#/components/messages/space.state_changed.v1/headers"}
    ).is_valid(bad)


def test_document_gives_the_committed_file() -> None:
    assert asyncapi.document() == DOC
    assert DOC["info"]["version"] == SchemaStore(REPO_SCHEMAS).version


# --- drift --------------------------------------------------------------------------------


def test_check_fails_when_a_topic_changes_without_the_document(committed: Path) -> None:
    catalogue = [
        dataclasses.replace(spec, partitions=24) if spec.name == "space-events.v1" else spec
        for spec in load_catalogue()
    ]

    assert SchemaStore(committed, catalogue=catalogue).check() == [f"{committed}/{DRIFTED}"]


def test_check_fails_when_a_schema_changes_without_the_document(committed: Path) -> None:
    store = SchemaStore(committed, replacing(ArchivedWithOperator))
    relative = "space-events.v1/space.archived.v1.json"
    text = store.expected_files(store.publications())[relative]
    (committed / relative).write_text(text)  # the schema regenerated, the document not

    assert store.check() == [f"{committed}/{DRIFTED}"]
    store.generate()
    assert store.check() == []
    doc = json.loads((committed / "asyncapi.json").read_text())
    data = doc["components"]["schemas"]["space.archived.v1"]["$defs"]["ArchivedDataWithOperator"]
    assert "archived_by" in data["properties"]


def test_the_check_command_names_the_drifted_document(
    committed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((committed / "asyncapi.json").read_text())
    doc["channels"]["downlinks.v1"]["bindings"]["kafka"]["partitions"] = 1
    (committed / "asyncapi.json").write_text(json.dumps(doc))
    parser = argparse.ArgumentParser(prog="parkstream")
    schemas_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["schemas", "check", "--dir", str(committed)])

    assert args.handler(args) == 1
    assert f"{committed}/{DRIFTED}" in capsys.readouterr().err.splitlines()


def test_a_public_topic_that_carries_no_record_type_is_refused(committed: Path) -> None:
    extra = TopicSpec("parking-fees.v1", "space_id", 3, 3, public=True, description="Fees.")
    store = SchemaStore(committed, catalogue=[*load_catalogue(), extra])

    assert store.check() == [
        f"{committed}/asyncapi.json: public topic(s) parking-fees.v1 carry no record type"
    ]
    with pytest.raises(SchemaStoreError, match=r"parking-fees\.v1 carry no record type"):
        store.generate()


def test_record_types_of_a_topic_the_catalogue_does_not_make_public_are_refused(
    committed: Path,
) -> None:
    catalogue = [
        dataclasses.replace(spec, public=False) if spec.name == "downlinks.v1" else spec
        for spec in load_catalogue()
    ]

    assert SchemaStore(committed, catalogue=catalogue).check() == [
        f"{committed}/asyncapi.json: record types for downlinks.v1, which the topic catalogue "
        "does not list as public"
    ]


def test_an_older_version_still_in_the_topic_keeps_its_message(committed: Path) -> None:
    store = SchemaStore(
        committed,
        replacing(StateChangedV2),
        upcasters={("space.state_changed", 1): upcast_state_changed},
    )
    store.publish()
    doc = json.loads((committed / "asyncapi.json").read_text())

    messages = doc["channels"]["space-events.v1"]["messages"]
    assert {"space.state_changed.v1", "space.state_changed.v2"} <= set(messages)
    v1 = doc["components"]["schemas"]["space.state_changed.v1"]
    published = json.loads(
        (committed / "published/space-events.v1/space.state_changed.v1.r1.json").read_text()
    )
    assert v1["properties"].keys() == published["properties"].keys()
    v2 = doc["components"]["schemas"]["space.state_changed.v2"]
    assert (v1["properties"]["version"]["const"], v2["properties"]["version"]["const"]) == (1, 2)
    headers = doc["components"]["messages"]["space.state_changed.v2"]["headers"]["allOf"][1]
    assert headers["properties"]["ce_type"]["const"] == "dev.parkstream.space.state_changed.v2"


# --- the AsyncAPI parser ------------------------------------------------------------------


def run_validator(document: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the AsyncAPI parser is a Node.js package")
    if not (VALIDATOR_DIR / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail(
            "the AsyncAPI parser is not installed: "
            "run `npm ci --prefix tools/asyncapi-validate` (CI does)"
        )
    return subprocess.run(
        [node, str(VALIDATOR_DIR / "validate.mjs"), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_asyncapi_parser_accepts_the_committed_document() -> None:
    result = run_validator(REPO_SCHEMAS / "asyncapi.json")

    assert result.returncode == 0, result.stderr
    assert "valid AsyncAPI 3.0.0 (5 channels, 5 operations" in result.stdout


def test_the_asyncapi_parser_refuses_an_operation_with_another_channels_message(
    tmp_path: Path,
) -> None:
    doc = json.loads((REPO_SCHEMAS / "asyncapi.json").read_text())
    doc["operations"]["sendSpaceEventsV1"]["messages"].append(
        {"$ref": "#/channels/downlinks.v1/messages/downlink.requested.v1"}
    )
    broken = tmp_path / "asyncapi.json"
    broken.write_text(json.dumps(doc))

    result = run_validator(broken)

    assert result.returncode == 1
    assert "asyncapi3-operation-messages-from-referred-channel" in result.stderr
