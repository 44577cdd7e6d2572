"""Mapping between the event model and Snowplow tracker-protocol payloads.

A payload is one item of a ``payload_data`` body: a flat mapping whose values are all strings.
:func:`render_payload` renders an event (without ``stm``, which a sender sets per attempt) as a
:class:`RenderedPayload` Struct, :func:`to_payload` as a dict; :func:`from_payload` reads one
back, collecting every problem into a :class:`PayloadError`.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec
import orjson
from pydantic import ValidationError

from tracking_common.errors import PayloadError, ValidationIssue
from tracking_common.event_ids import new_event_id
from tracking_common.events import (
    EventType,
    Resolution,
    SelfDescribing,
    StructEvent,
    Subject,
    TrackedEvent,
    event_adapter,
    ms_from_datetime,
    utc_from_ms,
)

if TYPE_CHECKING:
    from tracking_common.ingest.structs import (
        EventStruct,
        ResolutionStruct,
        SelfDescribingStruct,
        StructEventStruct,
        SubjectStruct,
    )

    AnyEvent = TrackedEvent | EventStruct

__all__ = [
    "ANONYMOUS_NETWORK_USER_ID",
    "CONTEXTS_URI",
    "E_CODES",
    "SUBJECT_TEXT",
    "UNSTRUCT_EVENT_URI",
    "URI_REDIRECT_URI",
    "Payload",
    "RenderedPayload",
    "RequestFacts",
    "add_request_facts",
    "decode_base64_json",
    "from_payload",
    "issues_from_validation_error",
    "payload_document",
    "payload_issues",
    "payload_path",
    "redirect_payload",
    "render_payload",
    "to_payload",
]

Payload = dict[str, str]

UNSTRUCT_EVENT_URI: Final = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
CONTEXTS_URI: Final = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0"
_CONTEXTS_URIS: Final = frozenset({CONTEXTS_URI, CONTEXTS_URI[:-1] + "1"})
URI_REDIRECT_URI: Final = "iglu:com.snowplowanalytics.snowplow/uri_redirect/jsonschema/1-0-0"
ANONYMOUS_NETWORK_USER_ID: Final = "00000000-0000-0000-0000-000000000000"
"""The network user id of every event sent with ``SP-Anonymous`` (as Snowplow's collector)."""

E_CODES: Final[Mapping[EventType, str]] = {
    EventType.PAGE_VIEW: "pv",
    EventType.PAGE_PING: "pp",
    EventType.STRUCT: "se",
    EventType.SELF_DESCRIBING: "ue",
}
_TYPES_BY_CODE: Final = {code: kind for kind, code in E_CODES.items()}
# The members as module globals: reading one through its class costs about 0.1 us (the enum
# metaclass), and to_payload compares each event's type with them.
_PAGE_VIEW: Final = EventType.PAGE_VIEW
_PAGE_PING: Final = EventType.PAGE_PING
_STRUCT: Final = EventType.STRUCT
_SELF_DESCRIBING: Final = EventType.SELF_DESCRIBING

SUBJECT_TEXT: Final = (  # (Subject attribute, payload key) of the text fields
    ("user_id", "uid"),
    ("domain_user_id", "duid"),
    ("network_user_id", "tnuid"),
    ("session_id", "sid"),
    ("ip_address", "ip"),
    ("useragent", "ua"),
    ("language", "lang"),
    ("timezone", "tz"),
)
_SUBJECT_KEYS: Final = frozenset({key for _, key in SUBJECT_TEXT} | {"vid", "cd", "res", "vp"})
_PING_OFFSETS: Final = (
    ("min_x_offset", "pp_mix"),
    ("max_x_offset", "pp_max"),
    ("min_y_offset", "pp_miy"),
    ("max_y_offset", "pp_may"),
)


def _encode(value: Any, *, base64_encode: bool) -> str:
    try:
        raw = orjson.dumps(value)
    except TypeError:
        # An integer beyond 64 bits: JSON allows it, msgspec reads it, orjson cannot write it.
        raw = msgspec.json.encode(value)
    if base64_encode:
        return base64.urlsafe_b64encode(raw).decode("ascii")
    return raw.decode()


def _quoted(text: str) -> str:
    """``text`` as a JSON string: a plain value in a message, never a Python repr."""
    return orjson.dumps(text).decode()


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _resolution(value: Resolution | ResolutionStruct) -> str:
    return f"{value.width}x{value.height}"


_Field = str | msgspec.UnsetType


class RenderedPayload(msgspec.Struct, gc=False):
    """An event rendered as a tracker-protocol payload: what :func:`to_payload` returns as a
    dict, kept as a Struct so that the ingest path encodes its record in one msgspec call
    (0.65 against 2 us an event for the dict and orjson). Fields in rendering order; an
    unset field is absent from the payload."""

    e: str
    eid: str
    tv: str
    p: str
    aid: _Field = msgspec.UNSET
    tna: _Field = msgspec.UNSET
    dtm: _Field = msgspec.UNSET
    ttm: _Field = msgspec.UNSET
    url: _Field = msgspec.UNSET
    page: _Field = msgspec.UNSET
    refr: _Field = msgspec.UNSET
    uid: _Field = msgspec.UNSET
    duid: _Field = msgspec.UNSET
    tnuid: _Field = msgspec.UNSET
    sid: _Field = msgspec.UNSET
    ip: _Field = msgspec.UNSET
    ua: _Field = msgspec.UNSET
    lang: _Field = msgspec.UNSET
    tz: _Field = msgspec.UNSET
    vid: _Field = msgspec.UNSET
    res: _Field = msgspec.UNSET
    vp: _Field = msgspec.UNSET
    cd: _Field = msgspec.UNSET
    pp_mix: _Field = msgspec.UNSET
    pp_max: _Field = msgspec.UNSET
    pp_miy: _Field = msgspec.UNSET
    pp_may: _Field = msgspec.UNSET
    se_ca: _Field = msgspec.UNSET
    se_ac: _Field = msgspec.UNSET
    se_la: _Field = msgspec.UNSET
    se_pr: _Field = msgspec.UNSET
    se_va: _Field = msgspec.UNSET
    ue_pr: _Field = msgspec.UNSET
    ue_px: _Field = msgspec.UNSET
    co: _Field = msgspec.UNSET
    cx: _Field = msgspec.UNSET


def _subject_fields(payload: RenderedPayload, subject: Subject | SubjectStruct) -> None:
    # Spelled out rather than looped over SUBJECT_TEXT: a getattr per field cost 1.3 us an
    # event against 0.5 (bench_ingest's page views). Same keys, same order.
    if (text := subject.user_id) is not None:
        payload.uid = text
    if (text := subject.domain_user_id) is not None:
        payload.duid = text
    if (text := subject.network_user_id) is not None:
        payload.tnuid = text
    if (text := subject.session_id) is not None:
        payload.sid = text
    if (text := subject.ip_address) is not None:
        payload.ip = text
    if (text := subject.useragent) is not None:
        payload.ua = text
    if (text := subject.language) is not None:
        payload.lang = text
    if (text := subject.timezone) is not None:
        payload.tz = text
    if subject.session_index is not None:
        payload.vid = str(subject.session_index)
    if subject.screen_resolution is not None:
        payload.res = _resolution(subject.screen_resolution)
    if subject.viewport is not None:
        payload.vp = _resolution(subject.viewport)
    if subject.color_depth is not None:
        payload.cd = str(subject.color_depth)


def _kind_fields(payload: RenderedPayload, event: AnyEvent, *, base64_encode: bool) -> None:
    # Told apart by event_type rather than isinstance: the pydantic model and the Structs
    # of the hot path (tracking_common.ingest.structs) render through this one function.
    kind = event.event_type
    if kind is _PAGE_VIEW:
        return
    if kind is _PAGE_PING:
        for attribute, key in _PING_OFFSETS:
            if (offset := getattr(event, attribute)) is not None:
                setattr(payload, key, str(offset))
    elif kind is _STRUCT:
        struct = cast("StructEvent | StructEventStruct", event)
        payload.se_ca = struct.category
        payload.se_ac = struct.action
        if struct.label is not None:
            payload.se_la = struct.label
        if struct.property is not None:
            payload.se_pr = struct.property
        if struct.value is not None:
            payload.se_va = _number(struct.value)
    elif kind is _SELF_DESCRIBING:
        described = cast("SelfDescribing | SelfDescribingStruct", event)
        wrapper = {"schema": UNSTRUCT_EVENT_URI, "data": described.event.as_json()}
        unstruct = _encode(wrapper, base64_encode=base64_encode)
        if base64_encode:
            payload.ue_px = unstruct
        else:
            payload.ue_pr = unstruct


def to_payload(
    event: AnyEvent, *, base64_encode: bool = False, event_id: str | None = None
) -> Payload:
    """Render ``event`` as a tracker-protocol payload (every value a string, no ``stm``).

    Entities go to ``co`` (or base64 ``cx``), a self-describing event to ``ue_pr`` (or
    ``ue_px``), both wrapped in Snowplow's ``contexts`` / ``unstruct_event`` schemas.
    ``event`` is the pydantic model or its Struct form (the ingest hot path's): one renderer.
    ``event_id`` is the event's id as text when the caller has it already (a batch converts
    its ids in one call: ``str(UUID)`` costs 2-3 us an event).
    """
    payload: Payload = msgspec.to_builtins(
        render_payload(event, base64_encode=base64_encode, event_id=event_id)
    )
    return payload


def render_payload(
    event: AnyEvent, *, base64_encode: bool = False, event_id: str | None = None
) -> RenderedPayload:
    """:func:`to_payload`, as the Struct (for the ingest path, which encodes it as it is)."""
    payload = RenderedPayload(
        E_CODES[event.event_type],
        str(event.event_id) if event_id is None else event_id,
        event.tracker_version,
        # _value_ (the member's plain str) rather than .value, a property: 0.35 us an event.
        event.platform._value_,
    )
    if event.app_id is not None:
        payload.aid = event.app_id
    if event.namespace is not None:
        payload.tna = event.namespace
    if event.created_at is not None:
        payload.dtm = str(ms_from_datetime(event.created_at))
    if event.true_timestamp is not None:
        payload.ttm = str(ms_from_datetime(event.true_timestamp))
    page = event.page
    if page is not None:
        payload.url = page.url
        if page.title is not None:
            payload.page = page.title
        if page.referrer is not None:
            payload.refr = page.referrer
    if event.subject is not None:
        _subject_fields(payload, event.subject)
    _kind_fields(payload, event, base64_encode=base64_encode)
    if event.entities:
        contexts = {"schema": CONTEXTS_URI, "data": [e.as_json() for e in event.entities]}
        encoded = _encode(contexts, base64_encode=base64_encode)
        if base64_encode:
            payload.cx = encoded
        else:
            payload.co = encoded
    return payload


def decode_base64_json(text: str) -> Any:
    """Decode base64 (URL-safe or standard, padding optional) JSON text.

    Raises ValueError when the text is not base64 or not JSON.
    """
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64") from exc
    return orjson.loads(raw)


class _Reader:
    """Collects the issues found while reading one payload."""

    def __init__(self, payload: Mapping[str, str]) -> None:
        self.payload = payload
        self.issues: list[ValidationIssue] = []

    def fail(self, key: str, code: str, message: str) -> None:
        self.issues.append(ValidationIssue(f"/{key}" if key else "", code, message))

    def text(self, key: str) -> str | None:
        return self.payload.get(key) or None  # an empty value is no value

    def integer(self, key: str, code: str = "invalid_integer") -> int | None:
        text = self.text(key)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            self.fail(key, code, f"{key} must be an integer, got {_quoted(text[:40])}")
            return None

    def timestamp(self, key: str) -> Any:
        millis = self.integer(key, "invalid_timestamp")
        if millis is None:
            return None
        if not 0 <= millis < 253_402_300_800_000:
            self.fail(key, "invalid_timestamp", f"{key} is not a plausible epoch-ms timestamp")
            return None
        return utc_from_ms(millis)

    def resolution(self, key: str) -> dict[str, int] | None:
        text = self.text(key)
        if text is None:
            return None
        width, sep, height = text.partition("x")
        if sep and width.isdigit() and height.isdigit():
            return {"width": int(width), "height": int(height)}
        self.fail(key, "invalid_resolution", f"{key} must look like 1920x1080")
        return None

    def json(self, plain: str, encoded: str) -> tuple[str, Any] | None:
        if (text := self.text(encoded)) is not None:
            try:
                return encoded, decode_base64_json(text)
            except ValueError:
                self.fail(encoded, "invalid_base64_json", f"{encoded} is not base64 JSON")
                return None
        if (text := self.text(plain)) is not None:
            try:
                return plain, orjson.loads(text)
            except orjson.JSONDecodeError:
                self.fail(plain, "invalid_json", f"{plain} is not valid JSON")
        return None

    def wrapped(self, plain: str, encoded: str, accepts: Callable[[str], bool], what: str) -> Any:
        found = self.json(plain, encoded)
        if found is None:
            return None
        key, document = found
        if not isinstance(document, dict) or set(document) != {"schema", "data"}:
            self.fail(key, "invalid_wrapper", f"{key} must be a {{schema, data}} {what} wrapper")
            return None
        if not isinstance(document["schema"], str) or not accepts(document["schema"]):
            self.fail(key, "invalid_wrapper", f"{key} must use the {what} wrapper schema")
            return None
        return document["data"]


def _subject(reader: _Reader) -> dict[str, Any]:
    payload = reader.payload
    if payload.keys().isdisjoint(_SUBJECT_KEYS):  # most tracker events carry few of them
        return {}
    subject: dict[str, Any] = {
        attribute: text for attribute, key in SUBJECT_TEXT if (text := payload.get(key))
    }
    typed = (
        ("session_index", reader.integer("vid")),
        ("color_depth", reader.integer("cd")),
        ("screen_resolution", reader.resolution("res")),
        ("viewport", reader.resolution("vp")),
    )
    subject.update((attribute, value) for attribute, value in typed if value is not None)
    return subject


def _type_fields(reader: _Reader, kind: EventType) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if kind is EventType.PAGE_PING:
        for attribute, key in _PING_OFFSETS:
            if (offset := reader.integer(key)) is not None:
                fields[attribute] = offset
    elif kind is _STRUCT:
        fields["category"] = reader.text("se_ca")
        fields["action"] = reader.text("se_ac")
        fields["label"] = reader.text("se_la")
        fields["property"] = reader.text("se_pr")
        if (value := reader.text("se_va")) is not None:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                fields["value"] = number
            else:
                reader.fail("se_va", "invalid_number", "se_va must be a finite number")
    elif kind is _SELF_DESCRIBING:
        found_before = len(reader.issues)
        event = reader.wrapped("ue_pr", "ue_px", UNSTRUCT_EVENT_URI.__eq__, "unstruct_event")
        # Only when the wrapper itself raised no issue is it missing (not merely malformed).
        if event is None and len(reader.issues) == found_before:
            reader.fail("ue_pr", "missing_field", "a self-describing event needs ue_pr or ue_px")
        fields["event"] = event
    return fields


_KEYS_BY_FIELD: Final = {
    "/event_id": "eid",
    "/platform": "p",
    "/tracker_version": "tv",
    "/app_id": "aid",
    "/namespace": "tna",
    "/created_at": "dtm",
    "/sent_at": "stm",
    "/true_timestamp": "ttm",
    "/page/url": "url",
    "/page/title": "page",
    "/page/referrer": "refr",
    "/subject/session_index": "vid",
    "/subject/color_depth": "cd",
    "/subject/screen_resolution": "res",
    "/subject/viewport": "vp",
    "/category": "se_ca",
    "/action": "se_ac",
    "/label": "se_la",
    "/property": "se_pr",
    "/value": "se_va",
    **{f"/subject/{attribute}": key for attribute, key in SUBJECT_TEXT},
    **{f"/{attribute}": key for attribute, key in _PING_OFFSETS},
    # Last, as payload_path takes the first field that matches: "/page/title" above must win.
    # A page view without a page: its url is what is missing.
    "/page": "url",
}


def payload_path(path: str, payload: Mapping[str, str]) -> str:
    """Translate an event-model path (``/app_id``, ``/entities/0/data/x``) into the
    tracker-protocol payload's terms (``/aid``, ``/co/data/0/data/x``), so a tracker's
    errors name the keys it sent. Paths inside ``ue_pr``/``co`` (or their base64 forms) point
    into the JSON those keys hold. A path with no counterpart is returned as it is.
    """
    for prefix, plain, encoded, inner in (
        ("/entities", "co", "cx", "/data"),
        ("/event", "ue_pr", "ue_px", "/data"),
    ):
        if path == prefix or path.startswith(prefix + "/"):
            key = encoded if payload.get(encoded) and not payload.get(plain) else plain
            return f"/{key}{inner}{path.removeprefix(prefix)}"
    for field, key in _KEYS_BY_FIELD.items():
        if path == field or path.startswith(field + "/"):
            return f"/{key}{path.removeprefix(field)}"
    return path


def payload_issues(
    issues: Iterable[ValidationIssue], payload: Mapping[str, str]
) -> list[ValidationIssue]:
    """``issues`` of the event read from ``payload``, with paths in the payload's terms."""
    return [
        ValidationIssue(payload_path(issue.path, payload), issue.code, issue.message)
        for issue in issues
    ]


def payload_document(payload: Mapping[str, str]) -> dict[str, Any]:
    """The ``/v1`` form of a tracker-protocol payload, for the event model to validate.

    Raises PayloadError listing every problem found while reading it: unknown event type,
    malformed numbers, timestamps, resolutions or JSON, and wrong wrappers. A missing ``eid``
    gets a fresh UUID.
    """
    reader = _Reader(payload)
    code = reader.text("e")
    kind = _TYPES_BY_CODE.get(code or "")
    if kind is None:
        found = "missing" if code is None else f"not supported: {_quoted(code[:40])}"
        reader.fail("e", "unsupported_event_type", f"the event type e is {found}")
        raise PayloadError(reader.issues)
    document: dict[str, Any] = {
        "event_type": kind.value,
        "event_id": reader.text("eid") or new_event_id(),
        "platform": reader.text("p"),
        "tracker_version": reader.text("tv"),
        "app_id": reader.text("aid"),
        "namespace": reader.text("tna"),
        "created_at": reader.timestamp("dtm"),
        "sent_at": reader.timestamp("stm"),
        "true_timestamp": reader.timestamp("ttm"),
    }
    if (url := reader.text("url")) is not None:
        page = {"url": url, "title": reader.text("page"), "referrer": reader.text("refr")}
        document["page"] = {k: v for k, v in page.items() if v is not None}
    if subject := _subject(reader):
        document["subject"] = subject
    document.update(_type_fields(reader, kind))
    entities = reader.wrapped("co", "cx", _CONTEXTS_URIS.__contains__, "contexts")
    if entities is not None:
        if isinstance(entities, list):
            document["entities"] = entities
        else:
            key = "cx" if reader.text("cx") is not None else "co"
            reader.fail(key, "invalid_wrapper", "contexts data must be an array")
    if reader.issues:
        raise PayloadError(reader.issues)
    return {k: v for k, v in document.items() if v is not None}


def from_payload(payload: Mapping[str, str]) -> TrackedEvent:
    """Read a tracker-protocol payload into the event model.

    Raises PayloadError listing every problem: those of :func:`payload_document`, and any
    model limit broken (with paths in the payload's terms).
    """
    document = payload_document(payload)
    try:
        return event_adapter().validate_python(document)
    except ValidationError as exc:
        raise PayloadError(payload_issues(issues_from_validation_error(exc), payload)) from exc


def issues_from_validation_error(exc: ValidationError, prefix: str = "") -> list[ValidationIssue]:
    """Translate a pydantic ValidationError into ValidationIssues (path, code, message)."""
    issues = []
    for error in exc.errors(include_url=False):
        location = [str(part) for part in error["loc"]]
        # Discriminated unions put the variant's tag first in the location; it is noise here.
        if location and location[0] in _EVENT_TYPE_NAMES:
            location = location[1:]
        path = prefix + "".join(f"/{part}" for part in location)
        code, message = str(error["type"]), str(error["msg"])
        if code in {"union_tag_invalid", "union_tag_not_found"}:
            # pydantic names the expected tags by their enum reprs (<EventType.PAGE_VIEW: ...>).
            path += "/event_type"
            expected = ", ".join(kind.value for kind in EventType)
            found = (error.get("ctx") or {}).get("tag")
            what = "is missing" if found is None else f"{_quoted(str(found)[:40])} is not supported"
            message = f"event_type {what}; expected one of: {expected}"
        issues.append(ValidationIssue(path, code, message))
    return issues


_EVENT_TYPE_NAMES: Final = frozenset(kind.value for kind in EventType)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the server knows of a tracker request that the tracker may not: its client's
    address, user agent and network user id (the collector's cookie), and whether the tracker
    asked for server-side anonymisation (the ``SP-Anonymous`` header).
    """

    ip: str | None = None
    useragent: str | None = None
    network_user_id: str | None = None
    anonymous: bool = False


def add_request_facts(payload: Payload, facts: RequestFacts) -> None:
    """Fill ``ip``, ``ua`` and ``tnuid`` where the tracker sent none; a tracker's own win.

    Anonymous requests record no IP at all (a tracker-sent ``ip`` is removed too) and carry
    :data:`ANONYMOUS_NETWORK_USER_ID` as ``tnuid``, whatever the tracker sent.
    """
    if facts.anonymous:
        payload.pop("ip", None)
        payload["tnuid"] = ANONYMOUS_NETWORK_USER_ID
    else:
        if facts.ip and "ip" not in payload:
            payload["ip"] = facts.ip
        if facts.network_user_id and "tnuid" not in payload:
            payload["tnuid"] = facts.network_user_id
    if facts.useragent and "ua" not in payload:
        payload["ua"] = facts.useragent


def redirect_payload(query: Mapping[str, str]) -> Payload:
    """The payload a click redirect (``/r/tp2?u=<uri>&...``) stands for, as Snowplow reads it.

    ``u`` becomes a ``uri_redirect`` self-describing event; when the query already names an
    event (``e``), the redirect is attached to it as an entity instead. ``tv`` and ``p`` default
    to ``r-tp2`` and ``web``. Raises KeyError without ``u``.
    """
    redirect: dict[str, Any] = {"schema": URI_REDIRECT_URI, "data": {"uri": query["u"]}}
    payload = {key: value for key, value in query.items() if key != "u"}
    payload.setdefault("tv", "r-tp2")
    payload.setdefault("p", "web")
    if not payload.get("e"):
        payload["e"] = "ue"
        payload.pop("ue_px", None)
        wrapper = {"schema": UNSTRUCT_EVENT_URI, "data": redirect}
        payload["ue_pr"] = _encode(wrapper, base64_encode=False)
        return payload
    encoded = bool(payload.get("cx"))
    key = "cx" if encoded else "co"
    try:
        contexts = (
            decode_base64_json(payload[key])
            if encoded
            else orjson.loads(payload.get(key) or '{"data": []}')
        )
    except ValueError:
        return payload  # malformed contexts: from_payload reports them
    data = contexts.get("data") if isinstance(contexts, dict) else None
    if not isinstance(data, list):
        return payload
    merged = {"schema": contexts.get("schema", CONTEXTS_URI), "data": [*data, redirect]}
    payload[key] = _encode(merged, base64_encode=encoded)
    return payload
