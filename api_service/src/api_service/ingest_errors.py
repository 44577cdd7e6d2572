"""The ingest domain's refusals, as ``tracking_common.ingest`` defines them (its ``errors.py``).

Kept apart from :mod:`api_service.legacy_ingest` only because ``api_service.ingest`` imports
:mod:`api_service.errors`, which maps these: both modules go when the ingest domain moves to
common, and their importers then take these names from ``tracking_common.ingest``.

The tree::

    IngestError                       code, message
    ├── UnreadableBodyError           the body is not this route's envelope (empty_body,
    │                                 invalid_json, too_deep, invalid_batch, invalid_body,
    │                                 invalid_payload_data, no_events)
    ├── TooManyEventsError            more than max_events_per_request events
    └── SchemaRegistryUnavailableError  a registry failed or was too slow
"""

from __future__ import annotations

__all__ = [
    "IngestError",
    "SchemaRegistryUnavailableError",
    "TooManyEventsError",
    "UnreadableBodyError",
]


class IngestError(Exception):
    """A request the ingest domain refuses whole; ``code`` is a stable tag, ``message`` prose."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnreadableBodyError(IngestError):
    """The body cannot be read as this route's envelope."""


class TooManyEventsError(IngestError):
    """More events than the per-request limit."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__("too_many_events", f"{count} events in one request; the limit is {limit}")
        self.count = count
        self.limit = limit


class SchemaRegistryUnavailableError(IngestError):
    """A schema registry failed or was too slow: nothing of the request was checked."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "schema_registry_unavailable",
            f"the schemas of these events cannot be resolved now ({reason}); retry later",
        )
        self.reason = reason
