"""The bounded deduplication window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkstream.ingest.dedup import DedupWindow


def test_a_key_is_new_the_first_time_and_a_repeat_after() -> None:
    window = DedupWindow()
    assert window.seen("up:a", 0.0) is False
    assert window.seen("up:a", 1.0) is True
    assert window.seen("up:b", 1.0) is False


def test_the_oldest_key_leaves_when_the_count_bound_is_reached() -> None:
    window = DedupWindow(max_entries=2, max_age_s=None)
    for key in ("a", "b", "c"):
        window.seen(key, 0.0)
    assert "a" not in window
    assert len(window) == 2
    assert window.seen("a", 0.0) is False


def test_keys_expire_after_max_age_counted_from_first_sight() -> None:
    window = DedupWindow(max_age_s=10.0)
    window.seen("a", 0.0)
    assert window.seen("a", 9.0) is True  # a repeat does not extend the key's life
    assert window.seen("a", 10.0) is False


def test_a_snapshot_restores_into_an_equivalent_window() -> None:
    window = DedupWindow(max_entries=10, max_age_s=60.0)
    for index, key in enumerate(("a", "b", "c")):
        window.seen(key, float(index))
    restored = DedupWindow(max_entries=10, max_age_s=60.0)
    restored.restore(window.snapshot())
    assert restored.snapshot() == [("a", 0.0), ("b", 1.0), ("c", 2.0)]
    assert restored.seen("b", 5.0) is True


def test_restore_sorts_bounds_and_expires_the_entries() -> None:
    window = DedupWindow(max_entries=2, max_age_s=10.0)
    window.restore([("c", 30.0), ("a", 10.0), ("b", 25.0)], now=36.0)
    assert window.snapshot() == [("c", 30.0)]


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        DedupWindow(max_entries=0)
    with pytest.raises(ValueError, match="max_age_s"):
        DedupWindow(max_age_s=0)


@given(keys=st.lists(st.sampled_from("abcdefgh"), max_size=200))
def test_the_window_never_holds_more_than_max_entries(keys: list[str]) -> None:
    window = DedupWindow(max_entries=3, max_age_s=None)
    for key in keys:
        window.seen(key, 0.0)
        assert len(window) <= 3
