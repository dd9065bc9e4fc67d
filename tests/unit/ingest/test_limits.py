"""The bounded check of a parsed JSON tree."""

from __future__ import annotations

from parkstream.ingest.limits import Limits, check_tree


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
