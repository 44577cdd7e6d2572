"""The ingest interface of ``tracking_common.ingest`` over :class:`api_service.ingest.Ingestor`.

A temporary adapter: the request layer builds to the interface the ingest domain has once it
moves to common (bytes in, a :class:`Batch` or an :class:`IngestError` out), while the domain is
still ``api_service.ingest``. It parses with orjson, checks the nesting depth, takes the items
out of the route's envelope and checks their count, then hands them over. Every importer takes
these names from here (and the errors from ``api_service.ingest_errors``), so the move is one
import line per module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson
from tracking_common.errors import ValidationIssue
from tracking_common.iglu import IgluRepository
from tracking_common.iglu.resolver import IgluResolver
from tracking_common.messages import Headers, Message
from tracking_common.protocol import RequestFacts
from tracking_common.record import Source

from api_service.ingest import Batch, Rejection
from api_service.ingest import Ingestor as CheckingIngestor
from api_service.ingest_errors import (
    IngestError,
    SchemaRegistryUnavailableError,
    TooManyEventsError,
    UnreadableBodyError,
)

__all__ = [
    "Batch",
    "IngestError",
    "Ingestor",
    "Rejection",
    "SchemaRegistryUnavailableError",
    "TooManyEventsError",
    "UnreadableBodyError",
    "check_depth",
    "parse_json",
]

PAYLOAD_DATA_PREFIX: Final = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-"


class Ingestor:
    """Checks a request's events and builds the messages for the events and bad-events topics."""

    def __init__(
        self,
        *,
        iglu: IgluRepository,
        resolver: IgluResolver,
        events_topic: str,
        bad_events_topic: str,
        allow_unknown_schemas: bool,
        max_event_bytes: int,
        max_events_per_request: int,
        max_json_depth: int,
    ) -> None:
        self._checking = CheckingIngestor(
            iglu=iglu,
            resolver=resolver,
            events_topic=events_topic,
            bad_events_topic=bad_events_topic,
            allow_unknown_schemas=allow_unknown_schemas,
            max_event_bytes=max_event_bytes,
            retry_after_s=1,  # unused: a registry outage raises SchemaRegistryUnavailableError
        )
        self._max_events = max_events_per_request
        self._max_depth = max_json_depth

    async def v1(self, body: bytes, *, now_ms: int, trace: Headers, request_id: str) -> Batch:
        """/v1/events: ``body`` is the (already inflated) JSON: one event object or
        ``{"events": [...]}``; parsed once, here."""
        document = parse_json(body, self._max_depth)
        if isinstance(document, dict) and "events" in document:
            events = document["events"]
            if not isinstance(events, list) or len(document) != 1:
                message = 'a batch is {"events": [...]} with nothing else'
                raise UnreadableBodyError("invalid_batch", message)
            items: list[Any] = events
        elif isinstance(document, dict):
            items = [document]
        else:
            message = 'the body must be an event object or {"events": [...]}'
            raise UnreadableBodyError("invalid_body", message)
        self._check_count(items)
        return await self._checking.v1(items, now_ms=now_ms, trace=trace, request_id=request_id)

    async def tracker(
        self,
        body: bytes,
        *,
        source: Source,
        now_ms: int,
        trace: Headers,
        request_id: str,
        facts: RequestFacts,
    ) -> Batch:
        """POST tp2: ``body`` is a payload_data self-describing JSON."""
        document = parse_json(body, self._max_depth)
        if not (
            isinstance(document, dict)
            and isinstance(document.get("schema"), str)
            and document["schema"].startswith(PAYLOAD_DATA_PREFIX)
            and isinstance(document.get("data"), list)
        ):
            raise UnreadableBodyError(
                "invalid_payload_data",
                "the body must be a payload_data self-describing JSON: "
                '{"schema": ..., "data": [...]}',
            )
        return await self.tracker_payloads(
            list(document["data"]),
            source=source,
            now_ms=now_ms,
            trace=trace,
            request_id=request_id,
            facts=facts,
        )

    async def tracker_payloads(
        self,
        payloads: Sequence[dict[str, str]],
        *,
        source: Source,
        now_ms: int,
        trace: Headers,
        request_id: str,
        facts: RequestFacts,
    ) -> Batch:
        """/i and /r/tp2: payloads already read from a query string (and tp2's items)."""
        self._check_count(payloads)
        return await self._checking.tracker(
            payloads, source=source, now_ms=now_ms, trace=trace, request_id=request_id, facts=facts
        )

    def whole_request(
        self, raw: bytes, issue: ValidationIssue, *, source: Source, now_ms: int, request_id: str
    ) -> Message:
        """A bad event for a body that could not be read at all."""
        return self._checking.whole_request(
            raw, issue, source=source, now_ms=now_ms, request_id=request_id
        )

    async def close(self) -> None:
        """Close the resolver's registry connections (idempotent)."""
        await self._checking.close()

    def _check_count(self, items: Sequence[Any]) -> None:
        if len(items) > self._max_events:
            raise TooManyEventsError(len(items), self._max_events)
        if not items:
            raise UnreadableBodyError("no_events", "the request carries no events")


def parse_json(body: bytes, max_depth: int) -> Any:
    """Parse ``body`` as JSON and check its nesting depth (UnreadableBodyError otherwise)."""
    if not body:
        raise UnreadableBodyError("empty_body", "the request body is empty")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UnreadableBodyError("invalid_json", f"the body is not valid JSON: {exc}") from exc
    check_depth(document, max_depth)
    return document


def check_depth(document: Any, max_depth: int) -> None:
    """UnreadableBodyError if ``document`` nests deeper than ``max_depth`` (iteratively).

    Walks one level at a time with comprehensions that keep only containers: scalars, most of
    any document, cost no Python-level step of their own.
    """
    level = [document] if type(document) is dict or type(document) is list else []
    depth = 1
    while level:
        if depth > max_depth:
            raise UnreadableBodyError("too_deep", f"the JSON nests deeper than {max_depth} levels")
        level = [
            child
            for value in level
            for child in (value.values() if type(value) is dict else value)
            if type(child) is dict or type(child) is list
        ]
        depth += 1
