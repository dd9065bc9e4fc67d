from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from parkstream.projector.collector import THRESHOLDS, fewer_collections


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("thresholds")
def test_raised_meanwhile_and_restored() -> None:
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("thresholds")
def test_restored_after_an_error() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("thresholds")
@pytest.mark.parametrize("already", [(0, 10, 10), (200_000, 10, 10)])
def test_never_lowered(already: tuple[int, int, int]) -> None:
    gc.set_threshold(*already)
    with fewer_collections():
        assert gc.get_threshold() == already
    assert gc.get_threshold() == already


@pytest.mark.usefixtures("thresholds")
def test_nested() -> None:
    gc.set_threshold(700, 10, 10)
    with fewer_collections(), fewer_collections():
        assert gc.get_threshold() == THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)
