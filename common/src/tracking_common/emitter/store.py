"""The default event store: a bounded in-memory FIFO."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import islice

from tracking_common.emitter.errors import BufferFullError
from tracking_common.emitter.payload import PendingEvent

__all__ = ["InMemoryEventStore"]


class InMemoryEventStore:
    """Holds up to ``capacity`` events in memory; taken events are the emitter's to keep."""

    def __init__(self, *, batch_size: int = 50, capacity: int = 10_000) -> None:
        if batch_size < 1 or capacity < batch_size:
            raise ValueError("need 1 <= batch_size <= capacity")
        self._batch_size = batch_size
        self._capacity = capacity
        self._events: deque[PendingEvent] = deque()

    @property
    def batch_size(self) -> int:
        """Events in a full batch."""
        return self._batch_size

    @property
    def capacity(self) -> int:
        """Most events held."""
        return self._capacity

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: PendingEvent) -> None:
        """Append; raise BufferFullError at capacity."""
        if len(self._events) >= self._capacity:
            raise BufferFullError(
                f"event store holds {self._capacity} events",
                pending_events=len(self._events),
                pending_bytes=0,
            )
        self._events.append(event)

    def add_many(self, events: Sequence[PendingEvent]) -> None:
        """Append all of ``events``, or none of them when they would pass the capacity."""
        if len(self._events) + len(events) > self._capacity:
            raise BufferFullError(
                f"event store holds {len(self._events)} of {self._capacity} events",
                pending_events=len(self._events),
                pending_bytes=0,
            )
        self._events.extend(events)

    def full_batch(self) -> list[PendingEvent] | None:
        """The oldest ``batch_size`` events, or None."""
        if len(self._events) < self._batch_size:
            return None
        return self.batch_of(self._batch_size)

    def batch_of(self, count: int) -> list[PendingEvent]:
        """Up to ``count`` of the oldest events."""
        events = self._events
        if count >= len(events):
            taken = list(events)
            events.clear()
            return taken
        taken = list(islice(events, count))
        for _ in range(count):
            events.popleft()
        return taken

    def cleanup(self, batch: Sequence[PendingEvent], *, delivered: bool) -> None:
        """Nothing to do: taken events are no longer held here."""
