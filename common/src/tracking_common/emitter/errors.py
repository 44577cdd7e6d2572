"""Errors of the emitter core.

Hierarchy::

    TrackingError                       tracking_common.errors
    +-- EmitterError                    root of the emitter's errors
        +-- BufferFullError             the emitter holds ``capacity`` events (or bytes); not taken
        +-- EventTooLargeError          one event alone would make a request over ``byte_limit``
        +-- EmitterClosedError          the emitter was closed; nothing more is taken
        +-- TransportError              a request got no HTTP answer (``kind`` says why)

``TransportError`` is what an :class:`~tracking_common.emitter.ports.HttpClient` raises; the
emitter classifies it with its status table (TLS and DNS may count as set-up failures).
"""

from __future__ import annotations

from enum import StrEnum

from tracking_common.errors import TrackingError

__all__ = [
    "BufferFullError",
    "EmitterClosedError",
    "EmitterError",
    "EventTooLargeError",
    "TransportError",
    "TransportErrorKind",
]


class EmitterError(TrackingError):
    """Root of the emitter core's errors."""


class BufferFullError(EmitterError):
    """The emitter is at capacity; the event was not taken. Apply backpressure and retry."""

    def __init__(self, message: str, *, pending_events: int, pending_bytes: int) -> None:
        super().__init__(message)
        self.pending_events = pending_events
        self.pending_bytes = pending_bytes


class EventTooLargeError(EmitterError):
    """One event is larger than a request may be; it is never sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"event needs a {size}-byte request, over the {limit}-byte limit")
        self.size = size
        self.limit = limit


class EmitterClosedError(EmitterError):
    """The emitter is closed."""


class TransportErrorKind(StrEnum):
    """Why a request got no HTTP answer."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    DROPPED = "dropped"
    TLS = "tls"
    DNS = "dns"


class TransportError(EmitterError):
    """A request failed below HTTP: connection refused or dropped, timeout, TLS, DNS."""

    def __init__(self, kind: TransportErrorKind, message: str) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.detail = message
