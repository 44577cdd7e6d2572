"""The tracker's fast path: tracker-protocol payloads built directly, as Snowplow's trackers do.

Building each event as the pydantic model and rendering it with ``protocol.to_payload`` costs
more than sending it. The :class:`PayloadBuilder` writes the same dict straight away, after
cheap checks of the limits the event model enforces: string types and lengths (the ``atomic``
column sizes), the entity count, the Iglu URI pattern, integer ranges and finite numbers.

It vouches only for input it fully understands. Anything else, whether it breaks a limit or
is merely unusual (a string event id, a ``Platform`` given as text, a dict subject, an ``int``
subclass), raises :class:`NeedsModel`, and the tracker takes the model path, which accepts
it exactly as before or raises ``InvalidEventError`` listing every problem. So both paths
accept the same inputs and render the same payload (the unit tests check this with
generated input).
"""

from __future__ import annotations

import base64
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import orjson

from tracking_common.emitter.event_ids import new_event_id
from tracking_common.events import (
    MAX_ENTITIES,
    Platform,
    Resolution,
    SelfDescribingJson,
    Subject,
    ms_from_datetime,
)
from tracking_common.iglu import IGLU_URI_PATTERN
from tracking_common.protocol import CONTEXTS_URI, UNSTRUCT_EVENT_URI, Payload

__all__ = ["NeedsModel", "PayloadBuilder"]

# pydantic checks patterns with Rust's regex, whose ``$`` never matches before a final newline.
_IGLU_URI: Final = re.compile(IGLU_URI_PATTERN.removesuffix("$") + r"\Z")
_MAX_SCHEMA: Final = 512
_MAX_URL: Final = 4096
_MAX_TITLE: Final = 2000
_INT32: Final = 2**31
_EXACT_FLOAT: Final = 2**53
_SUBJECT_TEXT: Final = (
    ("user_id", "uid"),
    ("domain_user_id", "duid"),
    ("network_user_id", "tnuid"),
    ("session_id", "sid"),
    ("ip_address", "ip"),
    ("useragent", "ua"),
    ("language", "lang"),
    ("timezone", "tz"),
)
_SUBJECT_KEYS: Final = (*(key for _, key in _SUBJECT_TEXT), "vid", "res", "vp", "cd")
_OFFSET_KEYS: Final = ("pp_mix", "pp_max", "pp_miy", "pp_may")
_CONTEXTS_HEAD: Final = b'{"schema":"' + CONTEXTS_URI.encode() + b'","data":'
_UNSTRUCT_HEAD: Final = b'{"schema":"' + UNSTRUCT_EVENT_URI.encode() + b'","data":'
# Schemas that passed the URI check: a set lookup instead of the pattern's 1-2 us per entity.
# Bounded, so a caller inventing schemas cannot grow it without end (past it: checked each time).
_CHECKED_SCHEMAS: Final[set[str]] = set()
_MAX_CHECKED_SCHEMAS: Final = 4096


class NeedsModel(Exception):  # noqa: N818 - a signal between two paths, not an error for callers
    """The fast path does not vouch for this input; the event model must decide."""


def text(value: object, max_length: int) -> str:
    """``value`` when it is a plain ``str`` of 1 to ``max_length`` characters."""
    if type(value) is not str or not 0 < len(value) <= max_length:
        raise NeedsModel
    return value


def optional_text(value: object, max_length: int) -> str | None:
    """As :func:`text`, with None allowed."""
    return None if value is None else text(value, max_length)


def int_in(value: object, low: int, high: int) -> int:
    """``value`` when it is a plain ``int`` in ``[low, high]``."""
    if type(value) is not int or not low <= value <= high:
        raise NeedsModel
    return value


def number(value: object) -> str:
    """A finite ``float`` (or an ``int`` a float holds exactly) as ``protocol`` renders it."""
    if type(value) is int and -_EXACT_FLOAT < value < _EXACT_FLOAT:
        return str(value)
    if type(value) is not float or not math.isfinite(value):
        raise NeedsModel
    return str(int(value)) if value.is_integer() and abs(value) < _EXACT_FLOAT else repr(value)


def self_describing(value: object) -> dict[str, Any]:
    """The ``{"schema", "data"}`` form of an entity or self-describing event."""
    if type(value) is SelfDescribingJson:
        return value.as_json()
    if type(value) is not dict or len(value) != 2:
        raise NeedsModel
    schema = value.get("schema")
    if type(schema) is not str or type(value.get("data")) is not dict:
        raise NeedsModel
    if schema not in _CHECKED_SCHEMAS:
        if len(schema) > _MAX_SCHEMA or _IGLU_URI.match(schema) is None:
            raise NeedsModel
        if len(_CHECKED_SCHEMAS) < _MAX_CHECKED_SCHEMAS:
            _CHECKED_SCHEMAS.add(schema)
    return value


def _resolution(value: Resolution) -> str:
    return f"{value.width}x{value.height}"


def subject_fields(subject: Subject | None) -> Payload:
    """A validated :class:`Subject` as payload fields (``uid``, ``res``, ...)."""
    if subject is None:
        return {}
    if type(subject) is not Subject:
        raise NeedsModel
    fields = {
        key: value for name, key in _SUBJECT_TEXT if (value := getattr(subject, name)) is not None
    }
    if subject.session_index is not None:
        fields["vid"] = str(subject.session_index)
    if subject.screen_resolution is not None:
        fields["res"] = _resolution(subject.screen_resolution)
    if subject.viewport is not None:
        fields["vp"] = _resolution(subject.viewport)
    if subject.color_depth is not None:
        fields["cd"] = str(subject.color_depth)
    return fields


class PayloadBuilder:
    """Builds payloads for one tracker's namespace, app, platform, version and subject.

    A payload is written as the JSON object's bytes the emitter sends (``AsyncEmitter``
    takes them as they are): the fields every event of the tracker shares (``tv``, ``p``,
    ``aid``, ``tna``) are encoded once, and an event's own fields in one ``orjson`` call.
    The bytes decode to exactly the dict ``to_payload`` renders, keys in the same order.

    Every ``build`` raises :class:`NeedsModel` for input it does not vouch for, including
    tracker settings that break a limit (then every event takes the model path and is refused
    there with the model's own messages).
    """

    def __init__(
        self,
        *,
        namespace: object,
        app_id: object,
        platform: object,
        tracker_version: object,
        subject: Subject | None,
        encode_base64: bool,
        clock: Callable[[], float],
        event_ids: Callable[[], str] = new_event_id,
    ) -> None:
        self._clock = clock
        self._event_ids = event_ids
        self._base64 = encode_base64
        self._contexts_key = "cx" if encode_base64 else "co"
        self._unstruct_key = "ue_px" if encode_base64 else "ue_pr"
        head = _head(namespace, app_id, platform, tracker_version)
        # '","tv":"..","p":"..","aid":"..","tna":"..","dtm":"': between the eid and the dtm.
        self._head = None if head is None else b'",' + orjson.dumps(head)[1:-1] + b',"dtm":"'
        self.subject = subject

    @property
    def subject(self) -> Subject | None:
        """The tracker's subject."""
        return self._subject

    @subject.setter
    def subject(self, subject: Subject | None) -> None:
        self._subject = subject
        try:
            self._subject_fields: Payload | None = subject_fields(subject)
        except NeedsModel:
            self._subject_fields = None
        # No subject fields to add and a head vouched for: page_view's one-frame case.
        self._plain = self._head is not None and self._subject_fields == {}

    def build(
        self, code: bytes, page: Payload | None, kind: Payload, options: Mapping[str, Any]
    ) -> tuple[bytes, str]:
        """One event's JSON object and its ``eid``: ``e``, the page, subject and kind's fields.

        ``code`` is the ``e`` value as bytes (``b"pv"``); ``page`` and ``kind`` are fresh
        dicts of payload fields already checked by the caller (the builder may extend them);
        ``options`` are the tracker's (``entities``, ``subject``, ``true_timestamp``,
        ``event_id``).
        """
        head = self._head
        base_subject = self._subject_fields
        if head is None or base_subject is None:
            raise NeedsModel
        if not options:
            eid, ttm, entities = self._event_ids(), b"", None
        elif len(options) == 1 and (entities := options.get("entities")) is not None:
            eid, ttm = self._event_ids(), b""  # the usual options: entities alone
        else:
            eid, ttm, base_subject = self._options(options, base_subject)
            entities = options.get("entities")
        if page is not None:
            fields = page
        elif base_subject:
            fields = {}
        else:
            fields, kind = kind, {}
        if base_subject:
            fields.update(base_subject)
        if kind:
            fields.update(kind)
        if entities:
            fields[self._contexts_key] = self._contexts(entities)
        if not fields:  # every event type has fields of its own; the model words the refusal
            raise NeedsModel
        try:
            own = orjson.dumps(fields)
        except TypeError:
            raise NeedsModel from None
        dtm = int(self._clock() * 1000)
        # The fields' object, less its opening brace, follows dtm.
        return b'{"e":"%b","eid":"%b%b%d"%b,%b' % (code, eid.encode(), head, dtm, ttm, own[1:]), eid

    def _options(self, options: Mapping[str, Any], subject: Payload) -> tuple[str, bytes, Payload]:
        """The ``eid``, the ``ttm`` field's bytes and the subject fields, per ``options``."""
        event_id = options.get("event_id")
        if not event_id:
            eid = self._event_ids()
        elif type(event_id) is uuid.UUID:
            eid = str(event_id)
        else:
            raise NeedsModel
        ttm = b""
        if (true_timestamp := options.get("true_timestamp")) is not None:
            if type(true_timestamp) is not datetime:
                raise NeedsModel
            ttm = b',"ttm":"%d"' % ms_from_datetime(true_timestamp)
        if options.get("subject") is not None:
            merged = {**subject, **subject_fields(options["subject"])}
            subject = {key: merged[key] for key in _SUBJECT_KEYS if key in merged}
        return eid, ttm, subject

    def page_view(
        self, url: object, title: object, referrer: object, options: Mapping[str, Any]
    ) -> tuple[bytes, str]:
        """``build`` for a page view, in one frame for the usual case.

        The usual case: the tracker's fields vouched for, no tracker subject, and no option
        but ``entities``; anything else goes through :meth:`build`.
        """
        head = self._head
        if (
            head is None
            or not self._plain
            or (options and (len(options) != 1 or "entities" not in options))
        ):
            return self.build(b"pv", page_fields(url, title, referrer), {}, options)
        # page_fields' checks, written out (a call per event saved).
        if type(url) is not str or not 0 < len(url) <= _MAX_URL:
            raise NeedsModel
        fields = {"url": url}
        if title is not None:
            if type(title) is not str or not 0 < len(title) <= _MAX_TITLE:
                raise NeedsModel
            fields["page"] = title
        if referrer is not None:
            if type(referrer) is not str or not 0 < len(referrer) <= _MAX_URL:
                raise NeedsModel
            fields["refr"] = referrer
        if options and (entities := options["entities"]):
            fields[self._contexts_key] = self._contexts(entities)
        eid = self._event_ids()
        try:
            own = orjson.dumps(fields)
        except TypeError:
            raise NeedsModel from None
        dtm = int(self._clock() * 1000)
        return b'{"e":"pv","eid":"%b%b%d",%b' % (eid.encode(), head, dtm, own[1:]), eid

    def _contexts(self, entities: object) -> str:
        """The ``co``/``cx`` value: at most ``MAX_ENTITIES`` entities, as ``{"schema", "data"}``.

        A list of plain dicts whose schemas were seen before is encoded as it is (one check
        per entity, no copy); anything else goes through :func:`self_describing` one by one.
        """
        if type(entities) is list and len(entities) <= MAX_ENTITIES:
            for entity in entities:
                if (
                    type(entity) is not dict
                    or len(entity) != 2
                    or type(schema := entity.get("schema")) is not str
                    or schema not in _CHECKED_SCHEMAS
                    or type(entity.get("data")) is not dict
                ):
                    entities = [self_describing(entity) for entity in entities]
                    break
        elif (
            isinstance(entities, Sequence)
            and not isinstance(entities, str)
            and len(entities) <= MAX_ENTITIES
        ):
            entities = [self_describing(entity) for entity in entities]
        else:
            raise NeedsModel
        return self._json(_CONTEXTS_HEAD, entities)

    def unstruct(self, event: object) -> Payload:
        """The ``ue_pr``/``ue_px`` field of a self-describing event."""
        return {self._unstruct_key: self._json(_UNSTRUCT_HEAD, self_describing(event))}

    def _json(self, head: bytes, data: Any) -> str:
        """``{"schema": ..., "data": data}`` as JSON text (base64 when the tracker says so)."""
        try:
            raw = head + orjson.dumps(data) + b"}"
        except TypeError:
            raise NeedsModel from None
        if self._base64:
            return base64.urlsafe_b64encode(raw).decode("ascii")
        return raw.decode()


def _head(namespace: object, app_id: object, platform: object, version: object) -> Payload | None:
    """``tv``, ``p``, ``aid``, ``tna``; None when one of them is not a value to vouch for."""
    if type(platform) is not Platform:
        return None
    try:
        head = {"tv": text(version, 100), "p": platform.value}
        if (aid := optional_text(app_id, 255)) is not None:
            head["aid"] = aid
        if (tna := optional_text(namespace, 128)) is not None:
            head["tna"] = tna
    except NeedsModel:
        return None
    return head


def page_fields(url: object, title: object, referrer: object) -> Payload:
    """``url``, ``page`` and ``refr`` (limits of ``events.Page``)."""
    # text()'s checks written out: three calls were a tenth of a page view's building.
    if type(url) is not str or not 0 < len(url) <= _MAX_URL:
        raise NeedsModel
    fields = {"url": url}
    if title is not None:
        if type(title) is not str or not 0 < len(title) <= _MAX_TITLE:
            raise NeedsModel
        fields["page"] = title
    if referrer is not None:
        if type(referrer) is not str or not 0 < len(referrer) <= _MAX_URL:
            raise NeedsModel
        fields["refr"] = referrer
    return fields


def ping_fields(offsets: Sequence[object]) -> Payload:
    """``pp_mix``, ``pp_max``, ``pp_miy``, ``pp_may`` (32-bit integers)."""
    return {
        key: str(int_in(offset, -_INT32, _INT32 - 1))
        for key, offset in zip(_OFFSET_KEYS, offsets, strict=True)
        if offset is not None
    }


def struct_fields(
    category: object, action: object, label: object, property_: object, value: object
) -> Payload:
    """``se_ca``, ``se_ac``, ``se_la``, ``se_pr``, ``se_va`` (limits of ``StructEvent``)."""
    fields = {"se_ca": text(category, 1000), "se_ac": text(action, 1000)}
    if label is not None:
        fields["se_la"] = text(label, 4096)
    if property_ is not None:
        fields["se_pr"] = text(property_, 1000)
    if value is not None:
        fields["se_va"] = number(value)
    return fields
