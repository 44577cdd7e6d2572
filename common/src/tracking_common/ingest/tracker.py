"""The tracker-protocol rules of ingestion, beside the protocol (``tracking_common.protocol``).

- A ``payload_data`` item is a flat object of strings, with ``e``, ``p`` and ``tv``, and only
  the keys of ``payload_data`` 1-0-4: msgspec decodes it as ``dict[str, str]`` and two set
  comparisons check its keys (2.3x faster than a Struct of 70 optional fields turned back into
  a dict: 3.9 against 9.0 us); only an item refused there is checked by the Iglu schema, whose
  message names the problem.
- The record keeps the tracker's own payload (minus ``stm``); a missing ``eid`` gets the
  event's generated id; ``ip``, ``ua`` and the network user id come from the request
  (:func:`~tracking_common.protocol.add_request_facts`); ``stm`` moves to the record's
  ``device_sent_tstamp``.
- Problems found by the event model are reported in the payload's terms (``/aid``,
  ``/co/data/0/...``: :func:`~tracking_common.protocol.payload_path`).
"""

from __future__ import annotations

from typing import Final, NamedTuple

import msgspec
import orjson
from pydantic import ValidationError

from tracking_common.errors import PayloadError, ValidationIssue
from tracking_common.events import event_adapter, ms_from_datetime
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, IgluRepository, SchemaValidationError
from tracking_common.ingest.decoding import (
    Json,
    check_document,
    loads,
    struct_from_model,
    too_deep,
)
from tracking_common.ingest.depth import nests_deeper
from tracking_common.ingest.errors import UnreadableBodyError
from tracking_common.ingest.structs import EVENT_DECODER, EventStruct
from tracking_common.protocol import (
    RequestFacts,
    add_request_facts,
    issues_from_validation_error,
    payload_document,
    payload_issues,
)
from tracking_common.record import PAYLOAD_KEYS

__all__ = [
    "ITEM_LEVEL",
    "PAYLOAD_DATA_PREFIX",
    "TrackerItem",
    "decode_payload",
    "payload_data_items",
    "read_event",
    "record_payload",
]

PAYLOAD_DATA_PREFIX: Final = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-"
ITEM_LEVEL: Final = 3
"""The level of an item in a ``payload_data`` body: ``{"schema": ..., "data": [ {item} ]}``."""


class _PayloadDataIn(msgspec.Struct):
    """A ``payload_data`` body: its schema URI and its items, kept as bytes."""

    schema: str
    data: list[msgspec.Raw]


_PAYLOAD_DATA: Final = msgspec.json.Decoder(_PayloadDataIn)


def payload_data_items(body: bytes, max_depth: int) -> list[msgspec.Raw]:
    """Each item of a ``payload_data`` body, as a slice of it. Raises UnreadableBodyError."""
    try:
        document = _PAYLOAD_DATA.decode(body) if body else None
    except (msgspec.DecodeError, RecursionError):
        document = None
    if document is None or not document.schema.startswith(PAYLOAD_DATA_PREFIX):
        check_document(body, max_depth)  # says why, if it is not JSON or too deep
        raise UnreadableBodyError(
            "invalid_payload_data",
            'the body must be a payload_data self-describing JSON: {"schema": ..., "data": [...]}',
        )
    return document.data


class TrackerItem(NamedTuple):
    """One tracker-protocol item: its JSON bytes, its payload if it is one, and the issues
    found so far."""

    raw: Json
    payload: dict[str, str] | None
    issues: list[ValidationIssue]


_PAYLOAD: Final = msgspec.json.Decoder(dict[str, str])
_ALLOWED_KEYS: Final = PAYLOAD_KEYS | {"stm"}


def decode_payload(
    raw: Json, *, envelopes: IgluRepository, level: int, max_depth: int
) -> TrackerItem:
    """Decode one ``payload_data`` item. Raises UnreadableBodyError(too_deep)."""
    try:
        payload = _PAYLOAD.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        payload = None
    if payload is None or not payload.keys() <= _ALLOWED_KEYS or not _has_required(payload):
        return _explain(raw, envelopes=envelopes, level=level, max_depth=max_depth)
    return TrackerItem(raw, payload, [])


def _has_required(payload: dict[str, str]) -> bool:
    return "e" in payload and "p" in payload and "tv" in payload


def _explain(raw: Json, *, envelopes: IgluRepository, level: int, max_depth: int) -> TrackerItem:
    """The slow path for an item msgspec refused: the Iglu schema names the problem."""
    item = loads(raw)
    if nests_deeper(item, max_depth - level + 1):
        raise too_deep(max_depth)
    if not isinstance(item, dict):
        return TrackerItem(
            raw, None, [ValidationIssue("", "invalid_type", "an event must be an object")]
        )
    try:
        envelopes.validate(PAYLOAD_DATA_SCHEMA, [item])
    except SchemaValidationError as exc:
        parts = exc.path.split("/")[1:]  # drop the array index
        path = "".join(f"/{part}" for part in parts)
        detail = exc.detail.replace("data[0]", "the event", 1)
        return TrackerItem(raw, None, [ValidationIssue(path, "schema_violation", detail)])
    return TrackerItem(raw, item, [])  # pragma: no cover - the Struct says what the schema says


def read_event(payload: dict[str, str]) -> tuple[EventStruct | None, list[ValidationIssue]]:
    """The event a payload stands for, or every issue (paths in the payload's terms)."""
    try:
        document = payload_document(payload)
    except PayloadError as exc:
        return None, list(exc.issues)
    try:
        # Encoding the document and decoding its bytes is 2.5x faster than msgspec.convert on
        # the dict (7 against 19 us an event in bench/bench_ingest.py's tp2 batch).
        event: EventStruct = EVENT_DECODER.decode(orjson.dumps(document))
    except msgspec.ValidationError:
        pass  # the pydantic model below names every problem
    else:
        return event, []
    try:
        model = event_adapter().validate_python(document)
    except ValidationError as exc:
        return None, payload_issues(issues_from_validation_error(exc), payload)
    return struct_from_model(model), []


def record_payload(
    payload: dict[str, str], event: EventStruct, facts: RequestFacts
) -> tuple[dict[str, str], int | None]:
    """The record's payload (the tracker's own keys, completed) and its device-sent time."""
    record = {key: value for key, value in payload.items() if key in PAYLOAD_KEYS}
    if "eid" not in record:  # not setdefault: str(UUID) costs a microsecond
        record["eid"] = str(event.event_id)
    add_request_facts(record, facts)
    sent = None if event.sent_at is None else ms_from_datetime(event.sent_at)
    return record, sent
