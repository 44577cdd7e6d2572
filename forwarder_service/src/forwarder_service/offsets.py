"""Per-partition commit watermarks over taken slices, fenced per assignment (pure; no I/O).

The delivery guarantee is kept here. The consumer hands the pipeline a *slice* of a partition
(the records one ``getmany`` returned for it, ascending). The pipeline *takes* a prefix of it
(what the sink had room for) as one :class:`RecordSlice`: its partition, generation, first and
last offset and how many records it holds. Each record is *settled* when its fate is known:
the collector answered 2xx, or the dead-letter topic acknowledged it with ``acks=all``; a slice
is settled when all of its records are. Slices finish out of order (batches race, dead letters
take longer), so :meth:`OffsetTracker.committable` only ever returns, per partition, one past
the last offset of the longest run of settled slices from the oldest: a later slice finishing
first never commits past an earlier one still in flight. Everything at or above the watermark
is redelivered after a crash or rebalance, so duplicates are possible and loss is not.

Bookkeeping is per slice, not per record (as Kafka's own consumer tracks positions): taking a
slice is O(1), settling is one decrement per record and O(1) per slice.

Each assignment of a partition gets a new *generation*. A slice carries its generation; once a
partition is revoked (or re-assigned) settling an older slice changes nothing, so a late answer
can never commit offsets of a partition this instance no longer owns (or re-owns from a
different position).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["OffsetTracker", "PartitionProgress", "RecordSlice"]

P = TypeVar("P", bound=Hashable)


class RecordSlice(Generic[P]):
    """Records of one partition taken together: offsets ``first``..``last`` (gaps allowed:
    compaction, transaction markers), ``count`` records, ``remaining`` not yet settled.

    ``first_ms`` is when the API accepted the slice's first event (the freshness gauges).
    """

    __slots__ = ("count", "first", "first_ms", "generation", "last", "remaining", "tp")

    def __init__(  # noqa: PLR0917 - one per fetched slice, built on the hot path
        self, tp: P, generation: int, first: int, last: int, count: int, first_ms: int
    ) -> None:
        self.tp = tp
        self.generation = generation
        self.first = first
        self.last = last
        self.count = count
        self.remaining = count
        self.first_ms = first_ms

    def __repr__(self) -> str:
        return (
            f"RecordSlice({self.tp!r}@{self.first}..{self.last}, gen={self.generation}, "
            f"{self.remaining}/{self.count} unsettled)"
        )


@dataclass(slots=True)
class _Partition:
    generation: int
    # Taken slices, oldest first, that are not yet below the watermark.
    slices: deque[RecordSlice[Any]] = field(default_factory=deque)
    outstanding: int = 0  # records taken and not settled
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
    """Tracks taken and settled slices of the partitions this instance owns.

    Slices taken from one partition must ascend within a generation (as Kafka delivers
    them). Misuse (taking a partition that is not owned, a slice that overlaps an earlier one,
    settling more records than a slice holds) raises ValueError: it is a bug, not an input error.
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

    def current(self, piece: RecordSlice[P]) -> bool:
        """Whether ``piece`` belongs to the current generation of an owned partition."""
        state = self._partitions.get(piece.tp)
        return state is not None and state.generation == piece.generation

    # -- taking and settling ---------------------------------------------------------------

    def take(self, piece: RecordSlice[P]) -> None:
        """Record that ``piece`` was handed off (its generation must be the partition's)."""
        state = self._state(piece.tp)
        if piece.generation != state.generation:
            raise ValueError(f"{piece!r} is not of generation {state.generation}")
        if piece.first <= state.last_taken or piece.last < piece.first or piece.count < 1:
            raise ValueError(f"{piece!r} taken after offset {state.last_taken}")
        state.slices.append(piece)
        state.outstanding += piece.remaining
        state.last_taken = piece.last

    def settle(self, piece: RecordSlice[P], records: int = 1) -> bool:
        """Settle ``records`` of ``piece``; False (and nothing changes) if it is stale.

        Raises ValueError when more records are settled than the slice has left.
        """
        state = self._partitions.get(piece.tp)
        if state is None or state.generation != piece.generation:
            return False
        if records > piece.remaining:
            raise ValueError(f"{records} settled of {piece!r}")
        piece.remaining -= records
        state.outstanding -= records
        if piece.remaining == 0:
            slices = state.slices
            while slices and slices[0].remaining == 0:
                state.watermark = slices.popleft().last + 1
        return True

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
            state.outstanding
            for partition in chosen
            if (state := self._partitions.get(partition)) is not None
        )

    def oldest_unsettled_ms(self) -> int | None:
        """When the first event of the oldest slice still unsettled was accepted (None: none).

        Events of a partition are accepted in about offset order, so this is the age of the
        oldest undelivered event, overstated by at most one slice's spread.
        """
        # The first slice left in a partition is unsettled: settled ones at the front are gone.
        firsts = [state.slices[0].first_ms for state in self._partitions.values() if state.slices]
        return min(firsts, default=None)

    def progress(self) -> dict[P, PartitionProgress]:
        """A snapshot of every owned partition."""
        return {
            partition: PartitionProgress(
                generation=state.generation,
                outstanding=state.outstanding,
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
