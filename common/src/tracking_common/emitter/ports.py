"""The emitter's ports: how it talks HTTP, where it keeps events, how it waits, and the
``Emitter`` port the tracker sends through.

Each is a small ``typing.Protocol`` passed to the emitter's constructor; the defaults are
:class:`~tracking_common.emitter.http_client.AiohttpClient` and
:class:`~tracking_common.emitter.store.InMemoryEventStore`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tracking_common.emitter.payload import PendingEvent

__all__ = [
    "Clock",
    "Emitter",
    "EventIntake",
    "EventStore",
    "HttpClient",
    "HttpResponse",
    "Sleep",
]

Sleep = Callable[[float], Awaitable[None]]
"""Waits (``asyncio.sleep``); injected so backoff tests take no time."""

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``), for ``stm`` and failure times."""

EventIntake = Callable[[bytes], None]
"""Takes one event as its JSON object's bytes less the opening brace (``AsyncEmitter.intake``)."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A collector's answer: the status and the headers the emitter reads (``Retry-After``)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpClient(Protocol):
    """Sends requests; raises ``TransportError`` when there is no HTTP answer."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """POST ``body`` to ``url``."""
        ...

    async def get(self, url: str, query: str) -> HttpResponse:
        """GET ``url`` with the (already encoded) ``query`` string."""
        ...

    async def close(self) -> None:
        """Release connections (idempotent)."""
        ...


class EventStore(Protocol):
    """Events waiting to be sent, oldest first (Snowplow trackers' ``EventStore``).

    The emitter takes events out in batches; ``cleanup`` is called once each taken event's
    fate is final: ``delivered=True`` after a 2xx, ``delivered=False`` when it failed for good.
    Events abandoned by ``close`` are not cleaned up, so a persistent store can send them again
    after a restart (its ``__len__`` then counts them and the emitter sends them on start).
    A store may also offer ``add_many(events)`` (all of them or none, like ``add``): the
    accumulator then takes a slice's runs in one call each (:class:`InMemoryEventStore` does).
    """

    def add(self, event: PendingEvent) -> None:
        """Append one event; raise BufferFullError when the store is at capacity."""
        ...

    def __len__(self) -> int:
        """Events stored and not yet taken."""
        ...

    @property
    def batch_size(self) -> int:
        """Events in a full batch."""
        ...

    @property
    def capacity(self) -> int:
        """Most events the store holds."""
        ...

    def full_batch(self) -> list[PendingEvent] | None:
        """Take the oldest ``batch_size`` events, or None if fewer are stored."""
        ...

    def batch_of(self, count: int) -> list[PendingEvent]:
        """Take up to ``count`` of the oldest events."""
        ...

    def cleanup(self, batch: Sequence[PendingEvent], *, delivered: bool) -> None:
        """Forget taken events whose fate is now final."""
        ...


class Emitter(Protocol):
    """What a :class:`~tracking_common.emitter.tracker.Tracker` sends events through.

    An emitter may also offer ``add_json(data, *, tag=None)``, taking the event as its JSON
    object's bytes (as ``add`` otherwise), and ``intake() -> EventIntake``, a callable taking
    them less the opening brace: the tracker hands the bytes its fast path writes to the
    intake, else to ``add_json`` (the brace put back), else decoded to ``add``
    (``AsyncEmitter`` has all three).
    """

    def add(self, payload: Mapping[str, str], *, tag: Any = None) -> None:
        """Take one event without waiting (raises BufferFullError when full)."""
        ...

    def flush_nowait(self) -> None:
        """Send what is buffered now, without waiting."""
        ...

    async def flush(self) -> None:
        """Send what is buffered now and wait until those events are settled."""
        ...

    async def close(self, timeout_s: float | None = None) -> None:
        """Flush (bounded by ``timeout_s``), stop, report what is left as abandoned."""
        ...
