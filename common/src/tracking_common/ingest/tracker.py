"""The tracker-protocol rules of ingestion, beside the protocol (``tracking_common.protocol``).

- A ``payload_data`` item is a flat object of strings, with ``e``, ``p`` and ``tv``, and only
  the keys of ``payload_data`` 1-0-4: msgspec decodes it into a Struct of optional string
  fields that says exactly that; only an item it refuses is checked by the Iglu schema, whose
  message names the problem.
- The record keeps the tracker's own payload (minus ``stm``); a missing ``eid`` gets the
  event's generated id; ``ip``, ``ua`` and the network user id come from the request
  (:func:`~tracking_common.protocol.add_request_facts`); ``stm`` moves to the record's
  ``device_sent_tstamp``.
- Problems found by the event model are reported in the payload's terms (``/aid``,
  ``/co/data/0/...``: :func:`~tracking_common.protocol.payload_path`).
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final, NamedTuple

import msgspec
import orjson
from pydantic import ValidationError

from tracking_common.errors import PayloadError, ValidationIssue
from tracking_common.events import event_adapter, ms_from_datetime
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, IgluRepository, SchemaValidationError
from tracking_common.ingest.decoding import struct_from_model, too_deep
from tracking_common.ingest.depth import nests_deeper
from tracking_common.ingest.structs import EventStruct
from tracking_common.protocol import (
    RequestFacts,
    add_request_facts,
    issues_from_validation_error,
    payload_document,
    payload_issues,
)
from tracking_common.record import PAYLOAD_KEYS

__all__ = ["TrackerItem", "decode_payload", "read_event", "record_payload"]

_REQUIRED_KEYS: Final = ("e", "p", "tv")


class TrackerItem(NamedTuple):
    """One tracker-protocol item: its JSON bytes, its payload if it is one, and the issues
    found so far."""

    raw: bytes
    payload: dict[str, str] | None
    issues: list[ValidationIssue]


@cache
def _payload_decoder() -> msgspec.json.Decoder[Any]:
    """A Struct with one optional string field per ``payload_data`` key (built on first use,
    not at import)."""
    optional = sorted((PAYLOAD_KEYS | {"stm"}) - set(_REQUIRED_KEYS))
    fields: list[Any] = [(key, str) for key in _REQUIRED_KEYS]
    fields += [(key, str | None, None) for key in optional]
    struct = msgspec.defstruct(
        "TrackerPayloadStruct", fields, forbid_unknown_fields=True, frozen=True
    )
    return msgspec.json.Decoder(struct)


def decode_payload(
    raw: bytes, *, envelopes: IgluRepository, level: int, max_depth: int
) -> TrackerItem:
    """Decode one ``payload_data`` item. Raises UnreadableBodyError(too_deep)."""
    try:
        decoded = _payload_decoder().decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return _explain(raw, envelopes=envelopes, level=level, max_depth=max_depth)
    fields = decoded.__struct_fields__
    values = msgspec.structs.astuple(decoded)
    payload = {key: value for key, value in zip(fields, values, strict=True) if value is not None}
    return TrackerItem(raw, payload, [])


def _explain(raw: bytes, *, envelopes: IgluRepository, level: int, max_depth: int) -> TrackerItem:
    """The slow path for an item msgspec refused: the Iglu schema names the problem."""
    item = orjson.loads(raw)
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
        event: EventStruct = msgspec.convert(document, EventStruct)
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
    record.setdefault("eid", str(event.event_id))
    add_request_facts(record, facts)
    sent = None if event.sent_at is None else ms_from_datetime(event.sent_at)
    return record, sent
