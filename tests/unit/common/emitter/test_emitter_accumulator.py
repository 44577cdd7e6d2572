"""The accumulator takes runs of events exactly as it takes them one by one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tracking_common.emitter import BufferFullError
from tracking_common.emitter.batching import Accumulator
from tracking_common.emitter.payload import ENVELOPE_BYTES, PendingEvent
from tracking_common.emitter.store import InMemoryEventStore


class _OneByOneStore(InMemoryEventStore):
    """A store without ``add_many`` (as a persistent store may be)."""

    add_many = None  # type: ignore[assignment]  # hides the method: the one-by-one path


def _cuts(store: InMemoryEventStore, sizes: Sequence[int], chunks: Sequence[int]) -> list[Any]:
    acc = Accumulator(store, batch_size=store.batch_size, byte_limit=ENVELOPE_BYTES + 1_000)
    events = [PendingEvent(b"x", size, index) for index, size in enumerate(sizes)]
    start = 0
    for chunk in chunks:
        acc.extend(events[start : start + chunk])
        start += chunk
    acc.extend(events[start:])
    acc.cut()
    return [[event.tag for event in batch.events] for batch in acc.ready]


@given(
    sizes=st.lists(st.integers(1, 1_000), max_size=60),
    chunks=st.lists(st.integers(0, 20), max_size=5),
    batch_size=st.integers(1, 12),
)
def test_runs_are_cut_as_single_events_are(
    sizes: list[int], chunks: list[int], batch_size: int
) -> None:
    runs = _cuts(InMemoryEventStore(batch_size=batch_size, capacity=100), sizes, chunks)
    singles = _cuts(_OneByOneStore(batch_size=batch_size, capacity=100), sizes, chunks)
    assert runs == singles
    assert [tag for batch in runs for tag in batch] == list(range(len(sizes)))


def test_a_run_past_the_capacity_is_refused_whole() -> None:
    store = InMemoryEventStore(batch_size=2, capacity=3)
    store.add_many([PendingEvent(b"x", 1)] * 2)
    with pytest.raises(BufferFullError):
        store.add_many([PendingEvent(b"x", 1)] * 2)
    assert len(store) == 2
