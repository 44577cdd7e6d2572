"""Checking events for the library exactly as the API checks its requests.

:class:`EventChecker` hands each chunk of ``batch_size`` events to the API's
:class:`tracking_common.ingest.Ingestor` as one request would arrive: ``/v1`` events joined
into ``{"events": [...]}`` (:meth:`EventChecker.v1`), tracker-protocol payloads into a
``payload_data`` body (:meth:`EventChecker.payloads`), with ``source: "internal"``. The
outcome, :class:`Checked`, maps every event of the call to its id or its rejection, by its
index in the call. The Iglu resolver is built on first use (reading the resolver configuration
file) and closed by :meth:`EventChecker.close`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import BaseModel
from tracking_common.errors import ValidationIssue
from tracking_common.iglu import bundled_repository
from tracking_common.ingest import Batch, Ingestor, Rejection, SchemaRegistryUnavailableError
from tracking_common.ingest.tracker import PAYLOAD_DATA_PREFIX
from tracking_common.messages import Headers, Message
from tracking_common.protocol import RequestFacts
from tracking_common.record import now_ms
from tracking_common.settings import IgluSettings

from tracking_producer.errors import SchemasUnavailableError

__all__ = ["PAYLOAD_DATA_SCHEMA", "Checked", "EventChecker"]

PAYLOAD_DATA_SCHEMA: Final = PAYLOAD_DATA_PREFIX + "4"
_NO_FACTS: Final = RequestFacts()  # no HTTP request: no client address, agent or cookie

Check = Callable[[bytes, Headers], Awaitable[Batch]]
Body = Callable[[Sequence[Any]], bytes]


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking a call's ``events``: ``event_ids`` by index (``None`` where
    rejected), the rejections, and the records of the valid events."""

    events: Sequence[Any]
    event_ids: list[str | None]
    rejections: list[Rejection]
    messages: list[Message]

    @property
    def valid_ids(self) -> list[str]:
        """The ids of the valid events, in order."""
        return list(filter(None, self.event_ids))  # in C; an id is never empty


class EventChecker:
    """The API's ingest checks, for events that arrive as Python values."""

    def __init__(
        self,
        *,
        topic: str,
        iglu_schema_dir: Path | None,
        iglu_resolver_config: Path | None,
        iglu_resolve_timeout_s: float,
        allow_unknown_schemas: bool,
        max_event_bytes: int,
        max_json_depth: int,
        batch_size: int,
    ) -> None:
        self.topic = topic
        self._batch_size = batch_size
        # Not validated here: the paths are read when the resolver is built, as before.
        self._iglu = IgluSettings.model_construct(
            iglu_schema_dir=iglu_schema_dir,
            iglu_resolver_config=iglu_resolver_config,
            iglu_resolve_timeout_s=iglu_resolve_timeout_s,
        )
        self._new_ingestor = functools.partial(
            Ingestor,
            events_topic=topic,
            bad_events_topic="",  # never written: the caller gets the rejections instead
            allow_unknown_schemas=allow_unknown_schemas,
            max_event_bytes=max_event_bytes,
            max_events_per_request=batch_size,
            max_json_depth=max_json_depth,
        )
        self._ingestor: Ingestor | None = None

    def ingestor(self) -> Ingestor:
        """The Ingestor (built on first use: reads the resolver configuration)."""
        if self._ingestor is None:
            resolver = self._iglu.resolver()
            self._ingestor = self._new_ingestor(iglu=bundled_repository(), resolver=resolver)
        return self._ingestor

    async def close(self) -> None:
        """Close the resolver's registry connections (idempotent)."""
        if self._ingestor is not None:
            await self._ingestor.close()
            self._ingestor = None

    async def v1(self, events: Sequence[Any], trace: Headers) -> Checked:
        """Check ``/v1`` events (dicts or model instances) as ``POST /v1/events`` would."""

        async def check(body: bytes, trace: Headers) -> Batch:
            return await self.ingestor().v1(
                body, now_ms=now_ms(), trace=trace, request_id=_request_id(), source="internal"
            )

        return await self._chunks(events, trace, check, _v1_body)

    async def payloads(self, payloads: Sequence[Any], trace: Headers) -> Checked:
        """Check tracker-protocol payloads as ``POST /tp2`` would (without request facts)."""

        async def check(body: bytes, trace: Headers) -> Batch:
            return await self.ingestor().tracker(
                body,
                source="internal",
                now_ms=now_ms(),
                trace=trace,
                request_id=_request_id(),
                facts=_NO_FACTS,
            )

        return await self._chunks(payloads, trace, check, _payload_data_body)

    async def _chunks(
        self, events: Sequence[Any], trace: Headers, check: Check, body: Body
    ) -> Checked:
        """Check ``events`` in chunks of ``batch_size``, each chunk as one API request
        (``body`` writes it). Raises SchemasUnavailableError when a registry cannot answer."""
        event_ids: list[str | None] = [None] * len(events)
        rejections: list[Rejection] = []
        messages: list[Message] = []
        for indices, chunk_body in self._bodies(events, body, rejections):
            try:
                batch = await check(chunk_body, trace)
            except SchemaRegistryUnavailableError as exc:
                raise SchemasUnavailableError(exc.message, event_ids=[], events=events) from exc
            if not batch.rejections and type(indices) is range:
                # The usual chunk: every event accepted, in order (no per-event step here).
                messages += batch.messages
                event_ids[indices.start : indices.stop] = batch.accepted_ids
                continue
            rejected = {r.index: r for r in batch.rejections}
            for position, r in rejected.items():
                rejections.append(Rejection(indices[position], r.event_id, r.issues))
            # The rejected events' bad-event messages are dropped: the caller has the error.
            messages += [m for m in batch.messages if m.topic == self.topic]
            accepted = [i for position, i in enumerate(indices) if position not in rejected]
            for index, event_id in zip(accepted, batch.accepted_ids, strict=True):
                event_ids[index] = event_id
        rejections.sort(key=lambda r: r.index)
        return Checked(events, event_ids, rejections, messages)

    def _bodies(
        self, events: Sequence[Any], body: Body, rejections: list[Rejection]
    ) -> list[tuple[Sequence[int], bytes]]:
        """The request body of each chunk, with the indices (in ``events``) of its items.

        The usual call (plain dicts) writes each chunk in one orjson call. Otherwise, or when
        one of them cannot be written as JSON, each event is written on its own, and those
        that cannot be are rejected here (added to ``rejections``).
        """
        size = self._batch_size
        if not isinstance(events, list | tuple):
            events = list(events)  # sliced below
        if set(map(type, events)) == {dict}:  # in C: no Python step per event
            try:
                return [
                    (
                        range(start, min(start + size, len(events))),
                        body(events[start : start + size]),
                    )
                    for start in range(0, len(events), size)
                ]
            except TypeError:
                pass  # a value JSON cannot carry: find which event, below
        encoded: list[tuple[int, orjson.Fragment]] = []
        for index, event in enumerate(events):
            raw = _encode(event)
            if isinstance(raw, bytes):
                encoded.append((index, orjson.Fragment(raw)))
            else:
                rejections.append(Rejection(index, None, [raw]))
        chunks = [encoded[start : start + size] for start in range(0, len(encoded), size)]
        return [([i for i, _ in chunk], body([raw for _, raw in chunk])) for chunk in chunks]


def _v1_body(items: Sequence[Any]) -> bytes:
    return orjson.dumps({"events": items})


def _payload_data_body(items: Sequence[Any]) -> bytes:
    return orjson.dumps({"schema": PAYLOAD_DATA_SCHEMA, "data": items})


def _encode(event: Any) -> bytes | ValidationIssue:
    """An event's (or payload's) JSON, or the issue that keeps it from having one."""
    if isinstance(event, BaseModel):
        return event.model_dump_json(by_alias=True, exclude_none=True).encode()
    if not isinstance(event, Mapping):
        return ValidationIssue("", "invalid_type", "an event must be a JSON object (a dict)")
    try:
        return orjson.dumps(event)
    except TypeError as exc:  # orjson.JSONEncodeError: a value JSON cannot carry
        return ValidationIssue("", "invalid_json", f"the event cannot be written as JSON: {exc}")


def _request_id() -> str:
    return "internal-" + os.urandom(8).hex()
