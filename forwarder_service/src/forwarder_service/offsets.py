"""Per-partition commit watermarks, fenced per assignment (pure; no I/O).

The delivery guarantee is kept here. A record is *taken* when the consumer hands it to the
pipeline, and *done* when its fate is settled: the collector answered 2xx, or the dead-letter
topic acknowledged it with ``acks=all``. Records finish out of order (batches race, dead
letters take longer), so :meth:`OffsetTracker.committable` only ever returns, per partition,
one past the highest offset below which *every* taken record is done: a later batch finishing
first never commits past an earlier one still in flight. Everything at or above the
watermark is redelivered after a crash or rebalance, so duplicates are possible and loss is not.

Each assignment of a partition gets a new *generation*. Results carry the generation of the
record they settle; once a partition is revoked (or re-assigned) results of older generations
are ignored, so a late answer can never commit offsets of a partition this instance no longer
owns (or re-owns from a different position).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["OffsetTracker", "PartitionProgress"]

P = TypeVar("P", bound=Hashable)


@dataclass(slots=True)
class _Partition:
    generation: int
    # Taken offsets, ascending, that are not yet below the watermark.
    order: deque[int] = field(default_factory=deque)
    # Taken offsets whose fate is still unknown.
    outstanding: set[int] = field(default_factory=set)
    last_taken: int = -1
    watermark: int | None = None  # next offset to consume after the settled prefix
    committed: int | None = None  # what the broker last acknowledged from us


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """A snapshot of one owned partition, for metrics and logs."""

    generation: int
    outstanding: int
    watermark: int | None
    committed: int | None


class OffsetTracker(Generic[P]):
    """Tracks taken and settled offsets of the partitions this instance owns.

    Offsets taken from one partition must ascend within a generation (as Kafka delivers
    them); gaps are fine (compaction, transaction markers). Misuse (taking a partition that is
    not owned, or offsets out of order) raises ValueError: it is a bug, not an input error.
    """

    def __init__(self) -> None:
        self._partitions: dict[P, _Partition] = {}
        self._next_generation = 1

    # -- ownership -----------------------------------------------------------------------

    def assign(self, partitions: Iterable[P]) -> int:
        """Start a new generation for ``partitions`` (forgetting older state); return it."""
        generation = self._next_generation
        self._next_generation += 1
        for partition in partitions:
            self._partitions[partition] = _Partition(generation=generation)
        return generation

    def revoke(self, partitions: Iterable[P]) -> None:
        """Fence ``partitions``: drop their state; later results for them are ignored."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    def owned(self) -> frozenset[P]:
        """The partitions currently tracked."""
        return frozenset(self._partitions)

    def generation(self, partition: P) -> int | None:
        """The current generation of ``partition``, or None if it is not owned."""
        state = self._partitions.get(partition)
        return state.generation if state is not None else None

    # -- taking and settling ---------------------------------------------------------------

    def take(self, partition: P, offsets: Iterable[int]) -> int:
        """Record that ``offsets`` (ascending) were handed off; return the generation."""
        state = self._state(partition)
        last = state.last_taken
        new = list(offsets)
        for offset in new:
            if offset <= last:
                raise ValueError(f"offset {offset} taken after {last} on {partition!r}")
            last = offset
        state.order.extend(new)
        state.outstanding.update(new)
        state.last_taken = last
        return state.generation

    def untake_from(self, partition: P, offset: int) -> None:
        """Forget taken offsets >= ``offset`` that were never handed off (the caller seeks back).

        Raises ValueError if one of them is already settled or below the watermark.
        """
        state = self._state(partition)
        if state.watermark is not None and offset < state.watermark:
            raise ValueError(f"cannot untake {offset}: below watermark {state.watermark}")
        while state.order and state.order[-1] >= offset:
            candidate = state.order.pop()
            if candidate not in state.outstanding:
                raise ValueError(f"cannot untake {candidate}: already settled")
            state.outstanding.discard(candidate)
        state.last_taken = state.order[-1] if state.order else (state.watermark or 0) - 1

    def done(self, partition: P, generation: int, offsets: Iterable[int]) -> bool:
        """Settle ``offsets``; False (and nothing changes) if ``generation`` is stale.

        Settling an offset twice, or one never taken, is ignored: duplicate answers happen.
        """
        state = self._partitions.get(partition)
        if state is None or state.generation != generation:
            return False
        state.outstanding.difference_update(offsets)
        self._advance(state)
        return True

    def _advance(self, state: _Partition) -> None:
        order, outstanding = state.order, state.outstanding
        last_settled = None
        while order and order[0] not in outstanding:
            last_settled = order.popleft()
        if last_settled is not None:
            state.watermark = last_settled + 1

    # -- committing ------------------------------------------------------------------------

    def committable(self, partitions: Iterable[P] | None = None) -> dict[P, int]:
        """Offsets to commit (next offset to read) for partitions that progressed since the
        last acknowledged commit; restricted to ``partitions`` when given."""
        chosen = self._partitions.keys() if partitions is None else partitions
        result: dict[P, int] = {}
        for partition in chosen:
            state = self._partitions.get(partition)
            if state is None or state.watermark is None:
                continue
            if state.committed is None or state.watermark > state.committed:
                result[partition] = state.watermark
        return result

    def committed(self, offsets: Mapping[P, int], generations: Mapping[P, int]) -> None:
        """Record that the broker acknowledged ``offsets`` (taken with ``generations``)."""
        for partition, offset in offsets.items():
            state = self._partitions.get(partition)
            if state is None or state.generation != generations.get(partition):
                continue
            if state.committed is None or offset > state.committed:
                state.committed = offset

    def generations(self, partitions: Iterable[P]) -> dict[P, int]:
        """The current generation of each owned partition among ``partitions``."""
        return {
            partition: state.generation
            for partition in partitions
            if (state := self._partitions.get(partition)) is not None
        }

    # -- introspection ---------------------------------------------------------------------

    def outstanding(self, partitions: Iterable[P] | None = None) -> int:
        """How many taken records (of ``partitions``, default all) are not yet settled."""
        chosen = self._partitions.keys() if partitions is None else partitions
        return sum(
            len(state.outstanding)
            for partition in chosen
            if (state := self._partitions.get(partition)) is not None
        )

    def progress(self) -> dict[P, PartitionProgress]:
        """A snapshot of every owned partition."""
        return {
            partition: PartitionProgress(
                generation=state.generation,
                outstanding=len(state.outstanding),
                watermark=state.watermark,
                committed=state.committed,
            )
            for partition, state in self._partitions.items()
        }

    def _state(self, partition: P) -> _Partition:
        state = self._partitions.get(partition)
        if state is None:
            raise ValueError(f"partition {partition!r} is not assigned")
        return state
