"""Refusals of a whole request by the ingest domain (each event's own problems are
:class:`~tracking_common.errors.ValidationIssue` s in a :class:`~tracking_common.ingest.Rejection`).

Hierarchy::

    TrackingError
    +-- IngestError                       a whole request is refused; ``code`` and ``message``
        +-- UnreadableBodyError           the body is not this route's envelope (empty_body,
        |                                 invalid_json, too_deep, invalid_batch, invalid_body,
        |                                 invalid_payload_data, no_events)
        +-- TooManyEventsError            more events than ``max_events_per_request``
        +-- SchemaRegistryUnavailableError  a registry failed or was too slow; nothing checked

Which HTTP status each one means is the request layer's decision, not this package's.
"""

from __future__ import annotations

from tracking_common.errors import TrackingError

__all__ = [
    "IngestError",
    "SchemaRegistryUnavailableError",
    "TooManyEventsError",
    "UnreadableBodyError",
]


class IngestError(TrackingError):
    """The whole request is refused: nothing of it is accepted."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnreadableBodyError(IngestError):
    """The body cannot be read as the route's envelope (``code`` says how)."""


class TooManyEventsError(IngestError):
    """The request carries more than ``limit`` events."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__("too_many_events", f"{count} events in one request; the limit is {limit}")
        self.count = count
        self.limit = limit


class SchemaRegistryUnavailableError(IngestError):
    """The request's schemas cannot be resolved now, through no fault of its events: the
    client should retry it later (nothing of it was checked or kept)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "schema_registry_unavailable",
            f"the schemas of these events cannot be resolved now ({reason}); retry later",
        )
        self.reason = reason
