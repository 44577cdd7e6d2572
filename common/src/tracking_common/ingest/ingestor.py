"""Turning request bodies into Kafka messages: valid events into records, the rest into bad
events.

Each item is checked on its own, with every problem collected: the event model (types and
limits), its size, duplicate event ids within the request, and self-describing data (the event
and each entity) against its Iglu schema. A body is parsed once, from bytes into Structs
(:mod:`~tracking_common.ingest.decoding`, :mod:`~tracking_common.ingest.tracker`); the schema
keys of the whole request are resolved at once (:mod:`~tracking_common.ingest.schema_checks`),
and a registry that cannot answer refuses the whole request
(:class:`~tracking_common.ingest.errors.SchemaRegistryUnavailableError`), so an event is never
rejected, nor accepted unchecked, because of a registry outage.

A valid item becomes an event record (``tracking_common.record``), encoded once and keyed by
:func:`~tracking_common.record.partition_key`; a rejected one becomes a bad event carrying its
reasons and its own bytes as they arrived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import orjson

from tracking_common.errors import ValidationIssue
from tracking_common.events import ms_from_datetime
from tracking_common.iglu import IgluRepository
from tracking_common.iglu.resolver import IgluResolver
from tracking_common.ingest.batch import Batch, Rejection
from tracking_common.ingest.decoding import Json, decode_events, loads, v1_events
from tracking_common.ingest.errors import TooManyEventsError, UnreadableBodyError
from tracking_common.ingest.schema_checks import resolve_schemas
from tracking_common.ingest.tracker import (
    ITEM_LEVEL,
    TrackerItem,
    decode_payload,
    payload_data_items,
    read_event,
    record_payload,
)
from tracking_common.messages import Headers, Message
from tracking_common.protocol import RenderedPayload, RequestFacts, payload_issues, render_payload
from tracking_common.record import (
    Source,
    encode_bad_event,
    encode_record,
    partition_key,
    record_headers,
)

__all__ = ["Ingestor"]


class Ingestor:
    """Checks items and builds the messages for the events topic and the bad-events topic.

    ``iglu`` holds the tracker-protocol envelopes (``payload_data``), checked synchronously;
    ``resolver`` resolves the schemas of events and entities. Raises the
    :mod:`~tracking_common.ingest.errors` refusals of a whole request.
    """

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
        self._iglu = iglu
        self._resolver = resolver
        self._events_topic = events_topic
        self._bad_topic = bad_events_topic
        self._allow_unknown = allow_unknown_schemas
        self._max_event_bytes = max_event_bytes
        self._max_events = max_events_per_request
        self._max_depth = max_json_depth

    async def v1(
        self,
        body: bytes,
        *,
        now_ms: int,
        trace: Headers,
        request_id: str,
        source: Source = "v1",
    ) -> Batch:
        """``/v1/events``: ``body`` is the (already inflated) JSON: one event object or
        ``{"events": [...]}``; parsed once, here. ``source`` is what the records carry: the
        internal producer library (``tracking_producer``) checks its events here too, as
        ``internal``."""
        events = v1_events(body, self._max_depth)
        self._check_count(len(events.raws))
        decoded = decode_events(events, max_depth=self._max_depth)
        schemas = await resolve_schemas(
            self._resolver, (item.event for item in decoded), allow_unknown=self._allow_unknown
        )
        request = _Request(source, now_ms, trace, request_id)
        batch = Batch()
        seen: set[str] = set()
        # The ids as text in one call (msgspec, in C): 0.2 us an event against 2-3 for str().
        ids: list[str | None] = msgspec.to_builtins(
            [None if item.event is None else item.event.event_id for item in decoded]
        )
        accept = _Accept(self._events_topic, request, batch)
        max_bytes = self._max_event_bytes
        for index, item in enumerate(decoded):
            raw, event = item.raw, item.event
            if event is None:
                issues = [*item.issues, *self._size_issues(raw)]
                self._settle(accept, seen, index, raw, item.event_id, issues, None, None)
                continue
            record = render_payload(event, event_id=ids[index])
            event_id = record.eid
            sent = None if event.sent_at is None else ms_from_datetime(event.sent_at)
            issues = schemas.issues(event)
            if issues or len(raw) > max_bytes or event_id in seen:
                issues = self._size_issues(raw) + issues
                self._settle(accept, seen, index, raw, event_id, issues, record, sent)
                continue
            # The common case, inline: an event with no issue is accepted (_settle's accept).
            seen.add(event_id)
            accept(record, event_id, sent)
        return batch

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
        """POST tp2: ``body`` is a ``payload_data`` self-describing JSON."""
        raws = payload_data_items(body, self._max_depth)
        self._check_count(len(raws))
        return await self._track(
            raws,
            ITEM_LEVEL,
            request=_Request(source, now_ms, trace, request_id),
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
        """``/i`` and ``/r/tp2``: payloads already read from a query string."""
        self._check_count(len(payloads))
        return await self._track(
            [orjson.dumps(payload) for payload in payloads],
            1,
            request=_Request(source, now_ms, trace, request_id),
            facts=facts,
        )

    def whole_request(
        self, raw: bytes, issue: ValidationIssue, *, source: Source, now_ms: int, request_id: str
    ) -> Message:
        """A bad event for a body that could not be read at all (so it is not lost)."""
        return self._bad(raw, [issue], _Request(source, now_ms, [], request_id), index=None)

    async def close(self) -> None:
        """Close the resolver's registry connections (idempotent)."""
        await self._resolver.close()

    # -- shared -------------------------------------------------------------------------------

    async def _track(
        self, raws: Sequence[Json], level: int, *, request: _Request, facts: RequestFacts
    ) -> Batch:
        """Check tracker-protocol items (their JSON bytes, at ``level`` in the body); the record
        keeps the tracker's payload (:func:`~tracking_common.ingest.tracker.record_payload`)."""
        items = [
            decode_payload(raw, envelopes=self._iglu, level=level, max_depth=self._max_depth)
            for raw in raws
        ]
        read = [
            read_event(item.payload) if item.payload is not None else (None, item.issues)
            for item in items
        ]
        schemas = await resolve_schemas(
            self._resolver, (event for event, _ in read), allow_unknown=self._allow_unknown
        )
        batch = Batch()
        accept = _Accept(self._events_topic, request, batch)
        seen: set[str] = set()
        for index, (item, (event, read_issues)) in enumerate(zip(items, read, strict=True)):
            issues = self._size_issues(item.raw) + read_issues
            record, sent = None, None
            if event is not None and item.payload is not None:
                issues += payload_issues(schemas.issues(event), item.payload)
                record, sent = record_payload(item.payload, event, facts)
            event_id = record["eid"] if record is not None else _claimed_eid(item)
            self._settle(accept, seen, index, item.raw, event_id, issues, record, sent)
        return batch

    def _check_count(self, count: int) -> None:
        if count > self._max_events:
            raise TooManyEventsError(count, self._max_events)
        if count == 0:
            raise UnreadableBodyError("no_events", "the request carries no events")

    def _size_issues(self, raw: Json) -> list[ValidationIssue]:
        if len(raw) <= self._max_event_bytes:
            return []
        message = f"the event is {len(raw)} bytes; the limit is {self._max_event_bytes}"
        return [ValidationIssue("", "event_too_large", message)]

    def _settle(  # noqa: PLR0917 - one item's every finding, in request order
        self,
        accept: _Accept,
        seen: set[str],
        index: int,
        raw: Json,
        event_id: str | None,
        issues: list[ValidationIssue],
        record: RenderedPayload | dict[str, str] | None,
        sent: int | None,
    ) -> None:
        """Accept the item's record, or reject it (a duplicate id within the request too)."""
        if event_id is not None and event_id in seen:
            issues.append(_duplicate(event_id))
        if record is None or issues:
            accept.batch.rejections.append(Rejection(index, event_id, issues))
            accept.batch.messages.append(self._bad(raw, issues, accept.request, index=index))
            return
        assert event_id is not None  # noqa: S101 - a record's own eid, as both callers pass it
        seen.add(event_id)
        accept(record, event_id, sent)

    def _bad(
        self,
        raw: Json,
        issues: Sequence[ValidationIssue],
        request: _Request,
        *,
        index: int | None,
    ) -> Message:
        value = encode_bad_event(
            raw if type(raw) is bytes else bytes(raw),
            issues,
            source=request.source,
            index=index,
            request_id=request.request_id,
            received_tstamp=request.now_ms,
        )
        return Message(self._bad_topic, value, request.request_id.encode(), [])


@dataclass(frozen=True, slots=True)
class _Request:
    """What every message of one request shares."""

    source: Source
    now_ms: int
    trace: Headers
    request_id: str


class _Accept:
    """Adds an accepted event's record to a request's batch (called once per event, so what
    every record of the request shares is looked up here, once)."""

    __slots__ = (
        "_add_id",
        "_add_message",
        "_now_ms",
        "_source",
        "_topic",
        "_trace",
        "batch",
        "request",
    )

    def __init__(self, topic: str, request: _Request, batch: Batch) -> None:
        self.request = request
        self.batch = batch
        self._topic = topic
        self._now_ms = request.now_ms
        self._source = request.source
        self._trace = request.trace
        self._add_message = batch.messages.append
        self._add_id = batch.accepted_ids.append

    def __call__(
        self, record: RenderedPayload | dict[str, str], event_id: str, sent: int | None
    ) -> None:
        value = encode_record(
            record, collector_tstamp=self._now_ms, source=self._source, device_sent_tstamp=sent
        )
        encoded_id = event_id.encode()
        key = partition_key(record)
        # With no user, the key is the event's own id: it never comes back. Positional
        # arguments: a named tuple built with a keyword costs twice as much.
        headers = record_headers(encoded_id, self._trace)
        self._add_message(Message(self._topic, value, key, headers, key != encoded_id))
        self._add_id(event_id)


def _duplicate(event_id: str) -> ValidationIssue:
    return ValidationIssue(
        "/event_id", "duplicate_event_id", f"event id {event_id} appears twice in this request"
    )


def _claimed_eid(item: TrackerItem) -> str | None:
    """The ``eid`` an unreadable item claims, for the answer."""
    if item.payload is not None:
        return item.payload.get("eid", "")[:64] or None
    try:
        document = loads(item.raw)
    except UnreadableBodyError:  # pragma: no cover - the raw bytes were parsed before
        return None
    eid = document.get("eid") if isinstance(document, dict) else None
    return eid[:64] if isinstance(eid, str) else None
