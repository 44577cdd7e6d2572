"""The Kafka message contract: event records (``EVENTS_TOPIC``) and bad events.

An event record's value is a self-describing JSON document, version 1-0-0::

    {"schema": "iglu:io.trackingpipeline/event_record/jsonschema/1-0-0",
     "data": {"event_id": "<uuid>", "collector_tstamp": 1700000000000,
              "source": "v1" | "tp2" | "pixel" | "internal",
              "device_sent_tstamp": 1699999999000,          # optional
              "payload": {"e": "pv", "eid": "<uuid>", "p": "web", "tv": "...", ...}}}

``payload`` is one Snowplow tracker-protocol event (a ``payload_data`` 1-0-4 item, every value a
string) without ``stm``, which the forwarder sets on each send attempt. The JSON Schema is
``schemas/iglu/io.trackingpipeline/event_record/jsonschema/1-0-0`` (the reference: a property
test holds the decoder to it). :func:`check_record` (and :func:`check_records`, a slice at once)
checks the same rules in two msgspec passes because it runs once per record on the forwarder's
hot path: the envelope, with the payload kept as its raw bytes (:class:`CheckedRecord`), then
the payload slice against a Struct of the ``payload_data`` keys (unknown keys forbidden, string
values, length limits). Only a record
that fails is walked field by field, to name the first rule it breaks. :func:`decode_record`
is the same check with the payload parsed into a dict, for readers that want its fields.

The record key is :func:`partition_key`: ``<app id>:<user>`` where the user is the first of the
user id, the domain user id and the session id, else the event id. One user's events therefore
stay in one partition, in order, and the key is never empty.

Headers: ``record-schema`` (the schema URI, so consumers can route without parsing),
``event-id``, ``content-type``, and W3C trace context (``traceparent``, ``tracestate``).
A breaking change to the contract gets a new major version (2-0-0) and a new schema file;
consumers reject versions they do not know.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Annotated, Any, Final, Literal, NamedTuple, TypeGuard

import msgspec
import orjson

from tracking_common.errors import RecordContractError, ValidationIssue
from tracking_common.iglu import BUNDLED_SCHEMA_DIR, SchemaKey
from tracking_common.protocol import RenderedPayload

__all__ = [
    "BAD_EVENT_SCHEMA",
    "EVENT_RECORD_SCHEMA",
    "HEADER_CONTENT_TYPE",
    "HEADER_EVENT_ID",
    "HEADER_RECORD_SCHEMA",
    "MAX_PAYLOAD_VALUE_CHARS",
    "PAYLOAD_KEYS",
    "CheckedRecord",
    "EventRecord",
    "Source",
    "check_record",
    "check_records",
    "decode_record",
    "encode_bad_event",
    "encode_record",
    "event_record_schema",
    "partition_key",
    "record_headers",
]

EVENT_RECORD_SCHEMA: Final = "iglu:io.trackingpipeline/event_record/jsonschema/1-0-0"
BAD_EVENT_SCHEMA: Final = "iglu:io.trackingpipeline/bad_event/jsonschema/1-0-0"

HEADER_RECORD_SCHEMA: Final = "record-schema"
HEADER_EVENT_ID: Final = "event-id"
HEADER_CONTENT_TYPE: Final = "content-type"

MAX_PAYLOAD_VALUE_CHARS: Final = 131_072
"""Longest value one payload field may hold in a record."""

Source = Literal["v1", "tp2", "pixel", "internal"]
_SOURCES: Final = frozenset({"v1", "tp2", "pixel", "internal"})
_REQUIRED_PAYLOAD_KEYS: Final = ("e", "p", "tv", "eid")


# payload_data 1-0-4's properties in the schema's order, less ``stm`` (a unit test compares
# them with the bundled schema, so no file is read at import time).
_PAYLOAD_FIELDS: Final = (
    "tna",
    "aid",
    "p",
    "dtm",
    "tz",
    "e",
    "tid",
    "eid",
    "tv",
    "duid",
    "nuid",
    "uid",
    "vid",
    "ip",
    "res",
    "url",
    "page",
    "refr",
    "fp",
    "ctype",
    "cookie",
    "lang",
    "f_pdf",
    "f_qt",
    "f_realp",
    "f_wma",
    "f_dir",
    "f_fla",
    "f_java",
    "f_gears",
    "f_ag",
    "cd",
    "ds",
    "cs",
    "vp",
    "mac",
    "pp_mix",
    "pp_max",
    "pp_miy",
    "pp_may",
    "ad_ba",
    "ad_ca",
    "ad_ad",
    "ad_uid",
    "tr_id",
    "tr_af",
    "tr_tt",
    "tr_tx",
    "tr_sh",
    "tr_ci",
    "tr_st",
    "tr_co",
    "tr_cu",
    "ti_id",
    "ti_sk",
    "ti_nm",
    "ti_na",
    "ti_ca",
    "ti_pr",
    "ti_qu",
    "ti_cu",
    "sa",
    "sn",
    "st",
    "sp",
    "se_ca",
    "se_ac",
    "se_la",
    "se_pr",
    "se_va",
    "ue_na",
    "ue_pr",
    "ue_px",
    "co",
    "cx",
    "ua",
    "tnuid",
    "sid",
    "ttm",
)

PAYLOAD_KEYS: Final = frozenset(_PAYLOAD_FIELDS)
"""The tracker-protocol keys a record payload may carry: payload_data 1-0-4's, less ``stm``."""


@cache
def event_record_schema() -> dict[str, Any]:
    """The contract's JSON Schema (the reference the decoder is tested against), read once."""
    path = BUNDLED_SCHEMA_DIR / SchemaKey.parse(EVENT_RECORD_SCHEMA).relative_path
    schema: dict[str, Any] = orjson.loads(path.read_bytes())
    return schema


class EventRecord(NamedTuple):
    """One decoded event record (see the module docstring for the wire form).

    A named tuple rather than a frozen dataclass: one is built per record on the forwarder's
    hot path, and a frozen dataclass costs three times as much to construct.
    """

    event_id: str
    collector_tstamp: int
    source: str
    payload: dict[str, str]
    device_sent_tstamp: int | None = None


class _RecordData(msgspec.Struct, gc=False):
    event_id: str
    collector_tstamp: int
    source: str
    payload: RenderedPayload | Mapping[str, str]
    device_sent_tstamp: int | msgspec.UnsetType = msgspec.UNSET


class _RecordValue(msgspec.Struct, gc=False):
    schema: str
    data: _RecordData


_RECORD_ENCODER: Final = msgspec.json.Encoder()


def encode_record(
    payload: RenderedPayload | Mapping[str, str],
    *,
    collector_tstamp: int | None = None,
    source: Source,
    device_sent_tstamp: int | None = None,
) -> bytes:
    """Encode a validated tracker-protocol payload (with ``eid``, without ``stm``) as a record.

    ``payload`` is a dict or, from the ``/v1`` path, the Struct ``render_payload`` built: one
    msgspec call writes the record either way, in the same bytes.
    """
    event_id = payload.eid if isinstance(payload, RenderedPayload) else payload["eid"]
    data = _RecordData(
        event_id,
        collector_tstamp if collector_tstamp is not None else now_ms(),
        source,
        payload,
        msgspec.UNSET if device_sent_tstamp is None else device_sent_tstamp,
    )
    return _RECORD_ENCODER.encode(_RecordValue(EVENT_RECORD_SCHEMA, data))


def partition_key(payload: RenderedPayload | Mapping[str, str]) -> bytes:
    """The record key: ``<aid>:<uid|duid|sid>`` when a user is known, else the event id."""
    aid: object
    user: object
    if isinstance(payload, RenderedPayload):  # UNSET is falsy, as an absent key is
        aid, user, eid = payload.aid, payload.uid or payload.duid or payload.sid, payload.eid
    else:
        get = payload.get
        aid, user, eid = get("aid"), get("uid") or get("duid") or get("sid"), payload["eid"]
    return f"{aid or ''}:{user}".encode() if user else eid.encode()


_SCHEMA_HEADER: Final = (HEADER_RECORD_SCHEMA, EVENT_RECORD_SCHEMA.encode())
_CONTENT_TYPE_HEADER: Final = (HEADER_CONTENT_TYPE, b"application/json")


def record_headers(
    event_id: str | bytes, trace: Sequence[tuple[str, bytes]] = ()
) -> tuple[tuple[str, bytes], ...]:
    """The contract headers of a record, then ``trace`` (the producer's trace context).

    ``event_id`` may be given already encoded (the ingest path encodes it once for the key too).
    """
    encoded = event_id.encode() if isinstance(event_id, str) else event_id
    return (_SCHEMA_HEADER, (HEADER_EVENT_ID, encoded), _CONTENT_TYPE_HEADER, *trace)


def _fail(path: str, code: str, message: str) -> RecordContractError:
    return RecordContractError([ValidationIssue(path, code, message)])


def _check_payload(payload: Any, event_id: Any) -> dict[str, str]:
    if type(payload) is not dict:
        raise _fail("/data/payload", "invalid_type", "payload must be an object")
    unknown = payload.keys() - PAYLOAD_KEYS
    if unknown:
        names = ", ".join(sorted(unknown)[:5])
        raise _fail("/data/payload", "unknown_field", f"payload has unknown fields: {names}")
    for key, value in payload.items():
        if type(value) is not str:
            raise _fail(f"/data/payload/{key}", "invalid_type", f"{key} must be a string")
        if len(value) > MAX_PAYLOAD_VALUE_CHARS:
            raise _fail(f"/data/payload/{key}", "too_long", f"{key} is too long")
    for key in _REQUIRED_PAYLOAD_KEYS:
        if key not in payload:
            raise _fail(f"/data/payload/{key}", "missing_field", f"payload needs {key}")
    if payload["eid"] != event_id:
        raise _fail("/data/payload/eid", "event_id_mismatch", "payload eid must equal event_id")
    return payload


def _check_timestamp(data: dict[str, Any], key: str, *, required: bool) -> int | None:
    # Absent is fine for an optional field, but null is not: the JSON Schema says integer.
    if key not in data and not required:
        return None
    value = data.get(key)
    if not _is_timestamp(value):
        raise _fail(f"/data/{key}", "invalid_type", f"{key} must be a non-negative integer")
    return value


_ENVELOPE_KEYS: Final = frozenset({"schema", "data"})
_DATA_KEYS: Final = frozenset(
    {"event_id", "collector_tstamp", "source", "payload", "device_sent_tstamp"}
)
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


_Timestamp = Annotated[int, msgspec.Meta(ge=0)]
_Value = Annotated[str, msgspec.Meta(max_length=MAX_PAYLOAD_VALUE_CHARS)]


class CheckedRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A record's ``data`` as :func:`check_record` found it; ``payload`` is the payload
    object's bytes exactly as they are in the record (kept for splicing, never re-encoded)."""

    event_id: str
    collector_tstamp: _Timestamp
    source: Source
    payload: msgspec.Raw
    # Absent is fine, null is not (the JSON Schema says integer): UNSET, not None.
    device_sent_tstamp: _Timestamp | msgspec.UnsetType = msgspec.UNSET


class _Envelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    schema: Literal["iglu:io.trackingpipeline/event_record/jsonschema/1-0-0"]  # the constant
    data: CheckedRecord


_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_REQUIRED: Final = frozenset(_REQUIRED_PAYLOAD_KEYS)
# msgspec finds a key's field by scanning the fields from the one after the last key's, so
# keys in the fields' order cost one comparison each and keys out of it up to one per field:
# the fields go in the order the API renders payloads (RenderedPayload), then the rest.
_DECODE_ORDER: Final = (
    *RenderedPayload.__struct_fields__,
    *(key for key in _PAYLOAD_FIELDS if key not in RenderedPayload.__struct_fields__),
)
# The fields trackers send: those the API renders, and the browser tracker's cookie, charset
# and document size. A payload of these alone is checked against them, any other key sends it
# to the check of all 79: msgspec fills in, then frees, every absent field of each Struct it
# decodes, and with 39 fields instead of 79 the slice check ran 22,200 instructions a record
# instead of 27,100 (callgrind), 1.05-1.19 us instead of 1.32-1.36.
_COMMON_ORDER: Final = (*RenderedPayload.__struct_fields__, "cookie", "cs", "ds")


def _payload_decoder(fields: Sequence[str]) -> msgspec.json.Decoder[Any]:
    """A decoder of a payload holding only ``fields`` (the required ones among them), each a
    string of at most MAX_PAYLOAD_VALUE_CHARS characters."""
    return msgspec.json.Decoder(
        msgspec.defstruct(
            "_Payload",
            [
                (key, _Value)
                if key in _REQUIRED
                else (key, _Value | msgspec.UnsetType, msgspec.UNSET)
                for key in fields
            ],
            forbid_unknown_fields=True,
            kw_only=True,
            gc=False,
        )
    )


_PAYLOAD: Final = _payload_decoder(_DECODE_ORDER)
_COMMON_PAYLOAD: Final = _payload_decoder(_COMMON_ORDER)


def _decode_payload(payload: msgspec.Raw) -> Any:
    """The payload as a Struct; a payload with a key the common fields lack is checked
    against them all (the decoder of all fields decides: the common one only goes faster)."""
    try:
        return _COMMON_PAYLOAD.decode(payload)
    except msgspec.ValidationError:
        return _PAYLOAD.decode(payload)


def _are_uuids(ids: Sequence[str]) -> bool:
    """Whether each of ``ids`` is a UUID in its 36-character form, as ``_UUID`` matches it.

    Checked on the ids joined, in a few C calls a slice rather than a regex match a record
    (73 against 145 ns an id): every id is 36 characters long, has its hyphens at 8, 13, 18 and
    23 and no other, and the 32 characters left are hex digits (``bytes.fromhex`` skips
    whitespace, so the count of bytes it returns is checked too).
    """
    count = len(ids)
    joined = "".join(ids)
    if len(joined) != 36 * count or min(map(len, ids), default=36) != 36:
        return False
    hyphens = "-" * count
    if not joined[8::36] == joined[13::36] == joined[18::36] == joined[23::36] == hyphens:
        return False
    digits = joined.replace("-", "")
    try:
        return len(digits) == 32 * count and len(bytes.fromhex(digits)) == 16 * count
    except ValueError:  # a character that is not a hex digit
        return False


def check_record(value: bytes | None) -> CheckedRecord:
    """Check one record value against the event-record contract without building its payload.

    Raises RecordContractError (with one issue: the first rule broken) for anything that is
    not a well-formed 1-0-0 event record, including null values (tombstones) and other versions.
    """
    if value is None:
        raise _fail("", "null_value", "record has no value")
    try:
        data = _ENVELOPE.decode(value).data
        payload = _decode_payload(data.payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _named_fault(value, exc) from None
    event_id = data.event_id
    if payload.eid != event_id or _UUID.fullmatch(event_id) is None:
        raise _named_fault(value, None)
    return data


def check_records(values: Sequence[bytes | None]) -> list[CheckedRecord]:
    """:func:`check_record` for a slice of values, with the per-record Python work done per
    slice (the ``eid`` comparison, the UUID check).

    Raises RecordContractError, for the first value that breaks the contract, if any does;
    :func:`check_record` on each value then tells which ones.
    """
    decode_envelope, decode_common = _ENVELOPE.decode, _COMMON_PAYLOAD.decode
    try:
        records = [decode_envelope(value).data for value in values]  # type: ignore[arg-type]
        payloads = [record.payload for record in records]
        try:
            eids = [decode_common(payload).eid for payload in payloads]
        except msgspec.ValidationError:  # a key the common fields lack, or a fault
            eids = [_decode_payload(payload).eid for payload in payloads]
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError):  # TypeError: None
        raise _first_fault(values) from None
    event_ids = [record.event_id for record in records]
    if eids != event_ids or not _are_uuids(event_ids):
        raise _first_fault(values)
    return records


def _first_fault(values: Sequence[bytes | None]) -> RecordContractError:
    for value in values:
        try:
            check_record(value)
        except RecordContractError as exc:
            return exc
    return _fail("", "invalid_record", "a record of the slice is invalid")  # pragma: no cover


def decode_record(value: bytes | None) -> EventRecord:
    """:func:`check_record`, with the payload parsed (for readers that want its fields)."""
    data = check_record(value)
    return EventRecord(
        data.event_id,
        data.collector_tstamp,
        data.source,
        orjson.loads(memoryview(data.payload)),
        None if data.device_sent_tstamp is msgspec.UNSET else data.device_sent_tstamp,
    )


def _named_fault(value: bytes, exc: Exception | None) -> RecordContractError:
    """The rule ``value`` breaks, named by walking it (runs only for records that fail)."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        return _fail("", "invalid_json", f"record value is not JSON: {error}")
    try:
        _check(document)
    except RecordContractError as error:
        return error
    # The walk found nothing the check refused: report the check's own words.
    return _fail("", "invalid_record", str(exc) if exc is not None else "record is invalid")


def _is_timestamp(value: Any) -> TypeGuard[int]:
    return type(value) is int and value >= 0


def _check(document: Any) -> EventRecord:
    """Walk ``document`` rule by rule; raise RecordContractError at the first rule broken."""
    if type(document) is not dict or document.keys() != _ENVELOPE_KEYS:
        raise _fail("", "invalid_envelope", "record must be {schema, data}")
    if document["schema"] != EVENT_RECORD_SCHEMA:
        raise _fail(
            "/schema", "unknown_schema", f"unsupported record schema {document['schema']!r}"
        )
    data = document["data"]
    if type(data) is not dict:
        raise _fail("/data", "invalid_type", "data must be an object")
    extra = data.keys() - _DATA_KEYS
    if extra:
        raise _fail("/data", "unknown_field", f"data has unknown fields: {sorted(extra)[:5]}")
    event_id = data.get("event_id")
    if type(event_id) is not str or _UUID.fullmatch(event_id) is None:
        raise _fail("/data/event_id", "invalid_event_id", "event_id must be a UUID string")
    source = data.get("source")
    if type(source) is not str or source not in _SOURCES:
        raise _fail("/data/source", "invalid_source", f"source must be one of {sorted(_SOURCES)}")
    return EventRecord(
        event_id=event_id,
        collector_tstamp=_check_timestamp(data, "collector_tstamp", required=True) or 0,
        source=source,
        payload=_check_payload(data.get("payload"), event_id),
        device_sent_tstamp=_check_timestamp(data, "device_sent_tstamp", required=False),
    )


def encode_bad_event(
    raw: bytes | str,
    issues: Sequence[ValidationIssue],
    *,
    source: Source,
    index: int | None,
    request_id: str | None = None,
    received_tstamp: int | None = None,
    raw_limit: int = 262_144,
) -> bytes:
    """Encode a rejected input for the bad-events topic, with every reason and the raw input.

    The raw input is kept as text (invalid UTF-8 replaced) and cut to ``raw_limit`` bytes so
    the record always fits in a Kafka message; ``raw_truncated`` says whether it was cut.
    """
    # A str may hold lone surrogates (from JSON "\ud800" escapes); keep it rather than fail.
    raw_bytes = raw.encode("utf-8", errors="replace") if isinstance(raw, str) else raw
    truncated = len(raw_bytes) > raw_limit
    data: dict[str, Any] = {
        "received_tstamp": received_tstamp if received_tstamp is not None else now_ms(),
        "source": source,
        "index": index,
        "errors": [issue.as_dict() for issue in issues]
        or [{"path": "", "code": "rejected", "message": "rejected"}],
        "raw": raw_bytes[:raw_limit].decode("utf-8", errors="replace"),
        "raw_truncated": truncated,
    }
    if request_id is not None:
        data["request_id"] = request_id[:128]
    return orjson.dumps({"schema": BAD_EVENT_SCHEMA, "data": data})


def now_ms() -> int:
    """Milliseconds since the epoch, now."""
    return time.time_ns() // 1_000_000
