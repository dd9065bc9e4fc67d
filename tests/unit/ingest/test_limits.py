"""The bounded check of a parsed JSON tree."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from parkstream.ingest.limits import Limits, check_tree, within_limits_by_size
from parkstream.simulate.messages import SimDevice, uplink

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def nested_lists(depth: int) -> object:
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_tree_within_the_limits_passes() -> None:
    assert check_tree({"a": [1, {"b": "c"}], "d": None}) is None


def test_depth_is_checked_without_recursion_even_far_past_the_limit() -> None:
    violation = check_tree(nested_lists(100_000))
    assert violation is not None
    assert violation.reason == "too_deep"


def test_the_depth_limit_counts_containers() -> None:
    assert check_tree(nested_lists(32)) is None
    deeper = check_tree(nested_lists(33))
    assert deeper is not None
    assert deeper.reason == "too_deep"


def test_long_strings_and_long_keys_are_refused() -> None:
    limits = Limits(max_string_chars=8)
    value_violation = check_tree({"a": "x" * 9}, limits)
    key_violation = check_tree({"k" * 9: 1}, limits)
    assert value_violation is not None
    assert value_violation.reason == "string_too_long"
    assert key_violation is not None
    assert key_violation.reason == "string_too_long"


def test_large_lists_and_objects_are_refused() -> None:
    limits = Limits(max_list_items=3, max_object_keys=3)
    many_items = check_tree({"a": [1, 2, 3, 4]}, limits)
    many_keys = check_tree({"a": {str(i): i for i in range(4)}}, limits)
    assert many_items is not None
    assert many_items.reason == "too_many_items"
    assert many_keys is not None
    assert many_keys.reason == "too_many_keys"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=4), children, max_size=8)
    ),
    max_leaves=60,
)
SMALL = st.integers(min_value=1, max_value=48)


@settings(max_examples=400)
@given(JSON, SMALL, SMALL, SMALL, SMALL, st.booleans())
def test_a_text_small_enough_by_size_always_passes_the_walk(
    value: object, strings: int, items: int, keys: int, depth: int, indent: bool
) -> None:
    limits = Limits(
        max_string_chars=strings, max_list_items=items, max_object_keys=keys, max_depth=depth
    )
    raw = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)
    if within_limits_by_size(raw, limits):
        assert check_tree(orjson.loads(raw), limits) is None


def test_the_size_bound_is_tight_enough_for_a_chirpstack_uplink() -> None:
    raw = uplink(SimDevice("70b3d5e75e000001"), f_port=1, payload=b"\x01", f_cnt=1, time=T0)
    assert within_limits_by_size(raw)
    assert not within_limits_by_size(raw, Limits(max_depth=3))
    assert not within_limits_by_size(raw, Limits(max_string_chars=len(raw) - 1))
