"""Properties of the contract codec: round trips, deterministic bytes, and a decoder that
refuses bad input only with ContractError.

The last tests pin bugs found here once, so they stay fixed.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from parkstream.domain.contract import RECORD_TYPES, ContractError, decode, encode, to_dict
from parkstream.domain.device_events import LocationData, LocationReported
from parkstream.domain.envelope import Envelope, Source

from .strategies import RECORD_CLASSES, any_record, json_values, records

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NO_STYLES: dict[Any, Any] = {}


def record_params() -> list[Any]:
    return [
        pytest.param(
            cls,
            id=f"{topic}:{cls.TYPE}",
        )
        for topic, cls in RECORD_CLASSES
    ]


@pytest.mark.parametrize("cls", record_params())
@PROPERTY
@given(data=st.data())
def test_every_record_type_round_trips(cls: type[Envelope], data: st.DataObject) -> None:
    record = data.draw(records(cls, NO_STYLES))

    decoded = decode(encode(record))

    assert type(decoded) is cls
    assert decoded == record


@pytest.mark.parametrize("cls", [p for p in record_params() if not p.marks])
@PROPERTY
@given(data=st.data())
def test_encode_is_deterministic(cls: type[Envelope], data: st.DataObject) -> None:
    record = data.draw(records(cls, NO_STYLES))

    first = encode(record)

    assert encode(record) == first
    assert encode(record.model_copy(deep=True)) == first
    assert encode(decode(first)) == first
    assert orjson.loads(first) == to_dict(record)


@PROPERTY
@given(payload=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_decode_refuses_arbitrary_bytes_only_with_contract_error(payload: bytes | str) -> None:
    with contextlib.suppress(ContractError):
        decode(payload)


@PROPERTY
@given(value=json_values)
def test_decode_refuses_arbitrary_json_only_with_contract_error(value: Any) -> None:
    payloads: list[Any] = [orjson.dumps(value), *([value] if isinstance(value, dict) else [])]
    for payload in payloads:
        with contextlib.suppress(ContractError):
            decode(payload)


def _locations(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON value."""
    if isinstance(value, dict):
        children: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    else:
        return []
    paths: list[tuple[Any, ...]] = []
    for key, child in children:
        paths.append((*at, key))
        paths.extend(_locations(child, (*at, key)))
    return paths


@PROPERTY
@given(record=any_record(NO_STYLES), data=st.data())
def test_decode_refuses_damaged_records_only_with_contract_error(
    record: Envelope, data: st.DataObject
) -> None:
    raw = to_dict(record)
    *parent_path, key = data.draw(st.sampled_from(_locations(raw)))
    damaged = copy.deepcopy(raw)
    parent = damaged
    for step in parent_path:
        parent = parent[step]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[key]
    else:
        parent[key] = data.draw(json_values)

    try:
        result = decode(orjson.dumps(damaged))
    except ContractError:
        return
    assert isinstance(result, Envelope)


@PROPERTY
@given(record=any_record(NO_STYLES), type_name=st.text(max_size=40))
def test_an_unknown_type_is_refused_naming_it(record: Envelope, type_name: str) -> None:
    raw = {**to_dict(record), "type": type_name}
    if type_name in RECORD_TYPES:
        return

    with pytest.raises(ContractError, match="unknown record type") as refused:
        decode(orjson.dumps(raw))
    assert repr(type_name) in str(refused.value)


@PROPERTY
@given(record=any_record(NO_STYLES), data=st.data())
def test_a_version_newer_than_the_reader_is_refused(record: Envelope, data: st.DataObject) -> None:
    version = data.draw(st.integers(type(record).VERSION + 1, 2**63 - 1))
    raw = {**to_dict(record), "version": version}

    with pytest.raises(ContractError, match=r"is newer than this reader") as refused:
        decode(orjson.dumps(raw))
    assert f"{record.type} v{version}" in str(refused.value)


# --- bugs found once (regressions) ----------------------------------------------------------


def _location(**data: Any) -> LocationReported:
    at = dt.datetime(2025, 11, 3, 8, 15, tzinfo=dt.UTC)
    return LocationReported(
        event_id="e1",
        dev_eui="70b3d57ed0000001",
        occurred_at=at,
        recorded_at=at,
        source=Source(kind="mqtt"),
        data=LocationData(**{"device": {}, "latitude": 52.37, "longitude": 4.89, **data}),
    )


@PROPERTY
@given(record=st.one_of([records(c) for c in RECORD_TYPES.values() if "policy" in c.TYPE]))
def test_a_display_policy_with_styles_round_trips(record: Envelope) -> None:
    assume(record.data.policy.styles)  # type: ignore[attr-defined]

    assert decode(encode(record)) == record


def test_a_nan_float_is_refused_when_built_or_round_trips() -> None:
    try:
        record = _location(latitude=float("nan"))
    except ValidationError:
        return  # refused at the source: no record that cannot be read back

    assert decode(encode(record)).model_dump_json() == record.model_dump_json()


def test_a_timestamp_with_a_sub_minute_offset_round_trips() -> None:
    lmt = dt.timezone(dt.timedelta(minutes=19, seconds=32))  # Amsterdam mean time
    record = LocationReported.model_validate(
        {**_location().model_dump(), "occurred_at": dt.datetime(1930, 5, 1, 12, 0, tzinfo=lmt)}
    )

    assert decode(encode(record)).occurred_at == record.occurred_at


@pytest.mark.parametrize("version", ["2", 2.0])
def test_a_too_new_version_that_is_not_an_integer_is_refused(version: Any) -> None:
    raw = {**to_dict(_location()), "version": version}

    with pytest.raises(ContractError):
        decode(orjson.dumps(raw))
