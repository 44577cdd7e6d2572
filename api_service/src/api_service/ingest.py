"""Turning request items into Kafka messages: valid events into records, the rest into bad events.

Each item is checked on its own, with every problem collected: the event model (types and
limits), its size, duplicate event ids within the request, and self-describing data (the event
and each entity) against its Iglu schema. Schemas are resolved per request, not per event: every
item is parsed first, the schema keys of the whole request are resolved at once (asynchronously,
with a deadline: :class:`~tracking_common.iglu.resolver.IgluResolver`), and then every item is
validated synchronously with compiled validators. A registry that cannot answer refuses the
whole request with 503 and ``Retry-After`` (:func:`api_service.errors.registry_unavailable`),
so an event is never rejected, nor accepted unchecked, because of a registry outage.

A valid item becomes an event record
(``tracking_common.record``) keyed by :func:`~tracking_common.record.partition_key`; a rejected
one becomes a bad event carrying its reasons and its raw input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError
from tracking_common.errors import PayloadError, ValidationIssue
from tracking_common.events import SelfDescribing, SelfDescribingJson, TrackedEvent, event_adapter
from tracking_common.events import ms_from_datetime as _ms
from tracking_common.iglu import (
    PAYLOAD_DATA_SCHEMA,
    IgluRepository,
    RegistryUnavailableError,
    SchemaKey,
    SchemaNotFoundError,
    SchemaUnusableError,
    SchemaValidationError,
)
from tracking_common.iglu.resolver import IgluResolver, Resolution
from tracking_common.messages import Headers, Message
from tracking_common.protocol import (
    RequestFacts,
    add_request_facts,
    from_payload,
    issues_from_validation_error,
    payload_issues,
    to_payload,
)
from tracking_common.record import (
    PAYLOAD_KEYS,
    Source,
    encode_bad_event,
    encode_record,
    partition_key,
    record_headers,
)

from api_service.errors import registry_unavailable

__all__ = ["Batch", "Ingestor", "Rejection"]

Parsed = tuple[bytes, TrackedEvent | None, list[ValidationIssue]]
"""An item's JSON bytes, its event if it parses, and the issues found so far."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected item: its index in the request, its event id if known, and every issue."""

    index: int
    event_id: str | None
    issues: Sequence[ValidationIssue]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form listed in the response."""
        return {
            "index": self.index,
            "event_id": self.event_id,
            "errors": [issue.as_dict() for issue in self.issues],
        }


@dataclass(slots=True)
class Batch:
    """The outcome of checking one request's items."""

    accepted_ids: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """How many events were accepted."""
        return len(self.accepted_ids)


class Ingestor:
    """Checks items and builds the messages for the events topic and the bad-events topic.

    ``iglu`` holds the tracker-protocol envelopes (``payload_data``), checked synchronously;
    ``resolver`` resolves the schemas of events and entities.
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
        retry_after_s: int,
    ) -> None:
        self._iglu = iglu
        self._resolver = resolver
        self._retry_after_s = retry_after_s
        self._events_topic = events_topic
        self._bad_topic = bad_events_topic
        self._allow_unknown = allow_unknown_schemas
        self._max_event_bytes = max_event_bytes

    async def v1(
        self, items: Sequence[Any], *, now_ms: int, trace: Headers, request_id: str
    ) -> Batch:
        """Check ``/v1/events`` items (the JSON event model).

        Raises RequestRefusedError(503) when the schemas cannot be resolved now.
        """
        parsed = [self._v1_event(item) for item in items]
        schemas = await self._resolve(event for _, event, _ in parsed)
        batch = Batch()
        seen: set[str] = set()
        for index, (item, (raw, event, issues)) in enumerate(zip(items, parsed, strict=True)):
            if event is not None:
                issues.extend(self._schema_issues(event, schemas))
            event_id = _event_id_of(item, event)
            if event_id is not None and event_id in seen:
                issues.append(_duplicate(event_id))
            if event is None or issues:
                self._reject(
                    batch,
                    index=index,
                    event_id=event_id,
                    issues=issues,
                    raw=raw,
                    source="v1",
                    now_ms=now_ms,
                    request_id=request_id,
                )
                continue
            seen.add(event_id or str(event.event_id))  # already str(event.event_id)
            sent = None if event.sent_at is None else _ms(event.sent_at)
            self._accept(
                batch, payload=to_payload(event), source="v1", now_ms=now_ms, sent=sent, trace=trace
            )
        return batch

    async def tracker(
        self,
        items: Sequence[Any],
        *,
        source: Source,
        now_ms: int,
        trace: Headers,
        request_id: str,
        facts: RequestFacts,
    ) -> Batch:
        """Check tracker-protocol payloads (``/tp2`` items, a ``/i`` or ``/r/tp2`` query).

        The original payload is kept; ``facts`` (the client's ``ip``, ``ua`` and network user
        id, or its anonymity) complete it by :func:`~tracking_common.protocol.add_request_facts`,
        a missing ``eid`` gets the generated one, and ``stm`` moves to the record's
        ``device_sent_tstamp`` (the forwarder sets its own on each send).
        Raises RequestRefusedError(503) when the schemas cannot be resolved now.
        """
        parsed = [self._tracker_event(item) for item in items]
        schemas = await self._resolve(event for _, event, _ in parsed)
        batch = Batch()
        seen: set[str] = set()
        for index, (item, (raw, event, issues)) in enumerate(zip(items, parsed, strict=True)):
            payload, sent = None, None
            if event is not None:
                payload, sent = self._tracker_payload(item, event, issues, schemas, facts)
            event_id = payload.get("eid") if payload is not None else _text_eid(item)
            if event_id is not None and event_id in seen:
                issues.append(_duplicate(event_id))
            if payload is None or issues:
                self._reject(
                    batch,
                    index=index,
                    event_id=event_id,
                    issues=issues,
                    raw=raw,
                    source=source,
                    now_ms=now_ms,
                    request_id=request_id,
                )
                continue
            seen.add(payload["eid"])
            self._accept(
                batch, payload=payload, source=source, now_ms=now_ms, sent=sent, trace=trace
            )
        return batch

    async def close(self) -> None:
        """Close the resolver's registry connections (idempotent)."""
        await self._resolver.close()

    def whole_request(
        self, raw: bytes, issue: ValidationIssue, *, source: Source, now_ms: int, request_id: str
    ) -> Message:
        """A bad event for a request that could not be read at all (so it is not lost)."""
        return self._bad(
            raw, [issue], source=source, index=None, now_ms=now_ms, request_id=request_id
        )

    # -- v1 ---------------------------------------------------------------------------------

    def _v1_event(self, item: Any) -> Parsed:
        raw = orjson.dumps(item)
        if not isinstance(item, dict):
            issue = ValidationIssue("", "invalid_type", "an event must be a JSON object")
            return raw, None, [issue]
        issues = self._size_issues(raw)
        try:
            event = event_adapter().validate_python(item)
        except ValidationError as exc:
            return raw, None, issues + issues_from_validation_error(exc)
        return raw, event, issues

    # -- tracker protocol ---------------------------------------------------------------------

    def _tracker_event(self, item: Any) -> Parsed:
        raw = orjson.dumps(item)
        if not isinstance(item, dict):
            return raw, None, [ValidationIssue("", "invalid_type", "an event must be an object")]
        issues = self._size_issues(raw)
        try:
            self._iglu.validate(PAYLOAD_DATA_SCHEMA, [item])
        except SchemaValidationError as exc:
            parts = exc.path.split("/")[1:]  # drop the array index
            path = "".join(f"/{part}" for part in parts)
            detail = exc.detail.replace("data[0]", "the event", 1)
            issues.append(ValidationIssue(path, "schema_violation", detail))
            return raw, None, issues
        try:
            event = from_payload(item)
        except PayloadError as exc:
            return raw, None, issues + list(exc.issues)
        return raw, event, issues

    def _tracker_payload(
        self,
        item: dict[str, Any],
        event: TrackedEvent,
        issues: list[ValidationIssue],
        schemas: _RequestSchemas,
        facts: RequestFacts,
    ) -> tuple[dict[str, str], int | None]:
        """The record payload; schema issues are added to ``issues``."""
        issues += payload_issues(self._schema_issues(event, schemas), item)
        payload = {key: value for key, value in item.items() if key in PAYLOAD_KEYS}
        payload.setdefault("eid", str(event.event_id))
        add_request_facts(payload, facts)
        sent = None if event.sent_at is None else _ms(event.sent_at)
        return payload, sent

    # -- shared -------------------------------------------------------------------------------

    def _size_issues(self, raw: bytes) -> list[ValidationIssue]:
        if len(raw) <= self._max_event_bytes:
            return []
        return [
            ValidationIssue(
                "",
                "event_too_large",
                f"the event is {len(raw)} bytes; the limit is {self._max_event_bytes}",
            )
        ]

    async def _resolve(self, events: Iterable[TrackedEvent | None]) -> _RequestSchemas:
        keys = _schema_keys(event for event in events if event is not None)
        try:
            resolution = await self._resolver.resolve(keys.values())
        except RegistryUnavailableError as error:
            raise registry_unavailable(error, retry_after_s=self._retry_after_s) from error
        return _RequestSchemas(keys, resolution)

    def _schema_issues(
        self, event: TrackedEvent, schemas: _RequestSchemas
    ) -> list[ValidationIssue]:
        issues: list[ValidationIssue] = []
        for path, sdj in _self_describing(event):
            issues += self._check_sdj(sdj, path, schemas)
        return issues

    def _check_sdj(
        self, sdj: SelfDescribingJson, path: str, schemas: _RequestSchemas
    ) -> list[ValidationIssue]:
        try:
            key = schemas.keys.get(sdj.schema_)
            if key is None:
                key = SchemaKey.parse(sdj.schema_)  # not an Iglu URI: raises, reported below
            schemas.resolution.validate(key, sdj.data)
        except SchemaNotFoundError:
            if self._allow_unknown:
                return []
            return [ValidationIssue(f"{path}/schema", "unknown_schema", f"no schema {sdj.schema_}")]
        except SchemaUnusableError as exc:
            return [ValidationIssue(f"{path}/schema", "unusable_schema", str(exc))]
        except SchemaValidationError as exc:
            detail_path = f"{path}/data" + (f"/{exc.path}" if exc.path else "")
            return [ValidationIssue(detail_path, "schema_violation", exc.detail)]
        except ValueError as exc:
            return [ValidationIssue(f"{path}/schema", "invalid_schema_uri", str(exc))]
        return []

    def _accept(
        self,
        batch: Batch,
        *,
        payload: dict[str, str],
        source: Source,
        now_ms: int,
        sent: int | None,
        trace: Headers,
    ) -> None:
        event_id = payload["eid"]
        value = encode_record(
            payload, collector_tstamp=now_ms, source=source, device_sent_tstamp=sent
        )
        headers = record_headers(event_id) + trace
        key = partition_key(payload)
        # With no user, the key is the event's own id: it never comes back.
        recurs = key != event_id.encode()
        batch.messages.append(Message(self._events_topic, value, key, headers, key_recurs=recurs))
        batch.accepted_ids.append(event_id)

    def _reject(
        self,
        batch: Batch,
        *,
        index: int,
        event_id: str | None,
        issues: Sequence[ValidationIssue],
        raw: bytes,
        source: Source,
        now_ms: int,
        request_id: str,
    ) -> None:
        batch.rejections.append(Rejection(index, event_id, issues))
        batch.messages.append(
            self._bad(raw, issues, source=source, index=index, now_ms=now_ms, request_id=request_id)
        )

    def _bad(
        self,
        raw: bytes,
        issues: Sequence[ValidationIssue],
        *,
        source: Source,
        index: int | None,
        now_ms: int,
        request_id: str,
    ) -> Message:
        value = encode_bad_event(
            raw,
            issues,
            source=source,
            index=index,
            request_id=request_id,
            received_tstamp=now_ms,
        )
        return Message(self._bad_topic, value, request_id.encode(), [])


@dataclass(frozen=True, slots=True)
class _RequestSchemas:
    """A request's schema keys, parsed once by URI, and their resolution."""

    keys: dict[str, SchemaKey]
    resolution: Resolution


def _self_describing(event: TrackedEvent) -> Iterator[tuple[str, SelfDescribingJson]]:
    """The event's self-describing data (its event, then each entity), with their paths."""
    if isinstance(event, SelfDescribing):
        yield "/event", event.event
    for position, entity in enumerate(event.entities):
        yield f"/entities/{position}", entity


def _schema_keys(events: Iterable[TrackedEvent]) -> dict[str, SchemaKey]:
    """The schema keys the events use, each URI parsed once per request; a malformed URI is
    left out here and reported when its event is checked."""
    keys: dict[str, SchemaKey] = {}
    for event in events:
        for _, sdj in _self_describing(event):
            if sdj.schema_ not in keys:
                with contextlib.suppress(ValueError):
                    keys[sdj.schema_] = SchemaKey.parse(sdj.schema_)
    return keys


def _duplicate(event_id: str) -> ValidationIssue:
    return ValidationIssue(
        "/event_id", "duplicate_event_id", f"event id {event_id} appears twice in this request"
    )


def _event_id_of(item: Any, event: TrackedEvent | None) -> str | None:
    if event is not None:
        return str(event.event_id)
    if isinstance(item, dict) and isinstance(item.get("event_id"), str):
        return str(item["event_id"])[:64]
    return None


def _text_eid(item: Any) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("eid"), str):
        return str(item["eid"])[:64]
    return None
