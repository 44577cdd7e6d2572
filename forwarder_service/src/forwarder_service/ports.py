"""The ports the forwarding pipeline calls, owned here; adapters and fakes implement them.

:class:`EventSink` is the emitter core as the pipeline needs it: take a slice of
tracker-protocol payloads (already encoded JSON objects) with a :class:`RecordTag` each, send
them in batches, and report every event's fate exactly once to the core's
:class:`~tracking_common.emitter.EmitterListener` (the pipeline): delivered (2xx), failed with a
:class:`~tracking_common.emitter.DeliveryFailure`, or abandoned on close. Setup failures
(credentials, URL, TLS/DNS) are never an event's fate: the sink keeps retrying and says so
through :attr:`EventSink.setup_failing`. There is one set of outcome types: the core's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import NamedTuple, Protocol

from tracking_common.emitter.payload import EncodedPayload

from forwarder_service.offsets import RecordSlice

__all__ = ["EventSink", "RecordLike", "RecordTag"]


class RecordLike(Protocol):
    """The parts of a consumed Kafka record the forwarder uses: aiokafka's ConsumerRecord, or
    the record batch's own record (:mod:`forwarder_service.batch_records`). Its topic and
    partition are those of the partition it was fetched for."""

    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class RecordTag(NamedTuple):
    """What travels with an event through the sink: its record, and the slice it settles.

    A named tuple so the pipeline builds a slice's tags in C (``map(partial(tuple.__new__,
    RecordTag), ...)``): one Python object construction per record is what this path avoids.
    """

    slice: RecordSlice[Hashable]
    record: RecordLike

    @property
    def tp(self) -> Hashable:
        """The record's partition."""
        return self.slice.tp

    @property
    def generation(self) -> int:
        """The assignment generation the record was taken under."""
        return self.slice.generation

    @property
    def accepted_ms(self) -> int:
        """When the API accepted the first event of the record's slice (freshness metrics)."""
        return self.slice.first_ms


class EventSink(Protocol):
    """The emitter core as the forwarder uses it."""

    def add_encoded(self, payloads: Sequence[EncodedPayload], tags: Sequence[RecordTag]) -> int:
        """Buffer the longest prefix of ``payloads`` there is room for, without waiting;
        return how many were taken (the caller keeps the rest)."""
        ...

    def backlog(self) -> tuple[int, int]:
        """Events and bytes buffered or in flight."""
        ...

    @property
    def setup_failing(self) -> bool:
        """True while the collector answers with setup failures."""
        ...

    def discard(self, predicate: Callable[[RecordTag], bool]) -> int:
        """Drop buffered (not in-flight) events whose tag matches; return how many."""
        ...

    async def flush(self) -> None:
        """Send everything buffered now and wait until those events' fates are known."""
        ...

    async def start(self) -> None:
        """Start the sending tasks."""
        ...

    async def close(self, timeout_s: float) -> None:
        """Stop; events not settled within ``timeout_s`` are reported ABANDONED."""
        ...
