"""Fewer garbage collections while batches are read, projected and written.

A batch makes several container objects per event (orjson's dicts, the events, the rows),
and most of them stay alive until the batch is written. With CPython's default thresholds
(a young collection every 700 net allocations) the collector scans the live part of the
batch again and again: about a quarter of the CPU time of preparing a batch, for nearly
no garbage (the batch's objects are freed by reference counting, they form no cycles).
While projecting, the young generation is collected every 100,000 allocations instead;
cycles are still collected, just later.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

THRESHOLDS = (100_000, 20, 10)


@contextlib.contextmanager
def fewer_collections(thresholds: tuple[int, int, int] = THRESHOLDS) -> Iterator[None]:
    """Raise the collector's thresholds to ``thresholds`` meanwhile (never lower them)."""
    previous = gc.get_threshold()
    if previous[0] == 0 or previous[0] >= thresholds[0]:
        yield  # collection disabled, or already as rare
        return
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
