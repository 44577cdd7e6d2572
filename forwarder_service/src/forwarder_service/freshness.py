"""When the oldest undelivered event was accepted, kept per fetched slice, not per record.

Each slice of records the pipeline takes from a partition leaves one entry: its last offset and
the acceptance time of its first event. At scrape time the partition's settled watermark (the
offset tracker's) drops the slices wholly settled; the first one left holds the oldest event
still waiting. Events of a partition are accepted in about offset order, so the figure is the
age of the oldest undelivered event, overstated by at most one slice's spread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping
from typing import Final

from forwarder_service.offsets import PartitionProgress

__all__ = ["TakenAges"]

_PRUNE_ABOVE: Final = 64  # slices per partition before neighbours are merged


class TakenAges:
    """Per partition: (last offset, first accepted ms) of each taken slice, oldest first."""

    def __init__(self) -> None:
        self._slices: dict[Hashable, tuple[int, deque[tuple[int, int]]]] = {}

    def taken(self, tp: Hashable, generation: int, last_offset: int, first_ms: int) -> None:
        """Note a slice of ``tp`` taken under ``generation``, up to ``last_offset``."""
        entry = self._slices.get(tp)
        if entry is None or entry[0] != generation:
            entry = (generation, deque())
            self._slices[tp] = entry
        slices = entry[1]
        slices.append((last_offset, first_ms))
        if len(slices) > _PRUNE_ABOVE:
            # Without scrapes the deque would only grow: merge neighbours, keeping each pair's
            # older time and later offset (the age can only be overstated, never missed).
            pairs = list(slices)
            merged = [
                (pairs[min(i + 1, len(pairs) - 1)][0], pairs[i][1]) for i in range(0, len(pairs), 2)
            ]
            slices.clear()
            slices.extend(merged)

    def oldest_ms(self, progress: Mapping[Hashable, PartitionProgress]) -> int | None:
        """Acceptance time of the oldest taken, unsettled event (None when none waits)."""
        oldest: int | None = None
        for tp in list(self._slices):
            generation, slices = self._slices[tp]
            state = progress.get(tp)
            if state is None or state.generation != generation or state.outstanding == 0:
                del self._slices[tp]  # revoked, re-assigned or all settled
                continue
            watermark = state.watermark
            while watermark is not None and slices and slices[0][0] < watermark:
                slices.popleft()
            if slices and (oldest is None or slices[0][1] < oldest):
                oldest = slices[0][1]
        return oldest
