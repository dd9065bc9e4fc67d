"""CloudEvents binary-mode headers: every record of every type gets the right attributes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkstream.domain import cloudevents
from parkstream.domain.contract import TOPIC_TYPES
from parkstream.domain.envelope import Envelope, utc_iso

from .strategies import records

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"

topic_and_record = st.sampled_from(
    [(topic, cls) for topic, types in TOPIC_TYPES.items() for cls in types]
).flatmap(lambda pair: st.tuples(st.just(pair[0]), records(pair[1])))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic_and_record)
def test_headers_describe_the_record(pair: tuple[str, Envelope]) -> None:
    topic, record = pair
    headers = cloudevents.headers(record, topic)
    names = [name for name, _ in headers]
    assert len(names) == len(set(names)), "a header appears twice"
    assert all(isinstance(value, bytes) for _, value in headers)
    attrs = cloudevents.attributes(headers)
    assert cloudevents.check(attrs, record) == []
    assert attrs["time"] == utc_iso(record.occurred_at)
    assert attrs.get("subject") == (record.space_id or record.dev_eui)
    # The dataschema names a schema file that exists in the repository.
    prefix = cloudevents.SCHEMA_BASE_URL
    assert attrs["dataschema"].startswith(prefix)
    assert (SCHEMAS / attrs["dataschema"][len(prefix) :]).is_file()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(TOPIC_TYPES["space-events.v1"][0]))
def test_check_names_what_disagrees(record: Envelope) -> None:
    attrs = cloudevents.attributes(cloudevents.headers(record, "space-events.v1"))
    attrs["id"] = "someone-else"
    del attrs["specversion"]
    problems = cloudevents.check(attrs, record)
    assert [p.split(":")[0] for p in problems] == ["specversion", "id"]
