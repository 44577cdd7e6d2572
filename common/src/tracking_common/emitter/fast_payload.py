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
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import orjson

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

__all__ = ["EventIds", "NeedsModel", "PayloadBuilder", "new_event_id"]

# pydantic checks patterns with Rust's regex, whose ``$`` never matches before a final newline.
_IGLU_URI: Final = re.compile(IGLU_URI_PATTERN.removesuffix("$") + r"\Z")
_MAX_SCHEMA: Final = 512
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
_CONTEXTS_HEAD: Final = {"schema": CONTEXTS_URI}


class NeedsModel(Exception):  # noqa: N818 - a signal between two paths, not an error for callers
    """The fast path does not vouch for this input; the event model must decide."""


class EventIds:
    """Random (version 4) UUID strings, cheaper than ``str(uuid.uuid4())``.

    Reads ``os.urandom`` 4 KiB at a time instead of 16 bytes per id. The buffer is dropped in
    a forked child, so parent and child never hand out the same ids.
    """

    __slots__ = ("_hex", "_pos")

    _CHUNK: Final = 16 * 256

    def __init__(self) -> None:
        self._hex = ""
        self._pos = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._hex, self._pos = "", 0

    def __call__(self) -> str:
        pos = self._pos
        if pos >= len(self._hex):
            self._hex, pos = os.urandom(self._CHUNK).hex(), 0
        self._pos = pos + 32
        h = self._hex[pos : pos + 32]
        # Version nibble 4; variant bits 10 (8, 9, a or b), as RFC 4122 says.
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


new_event_id: Final = EventIds()
"""A process-wide :class:`EventIds`."""


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
    data = value.get("data")
    if (
        type(schema) is not str
        or len(schema) > _MAX_SCHEMA
        or type(data) is not dict
        or _IGLU_URI.match(schema) is None
    ):
        raise NeedsModel
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
        self._head = _head(namespace, app_id, platform, tracker_version)
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

    def build(
        self, code: str, page: Payload | None, kind: Payload, options: Mapping[str, Any]
    ) -> Payload:
        """One event's payload: ``e=code``, the page fields, the kind's fields and the options.

        ``page`` and ``kind`` hold payload fields already checked by the caller; ``options``
        are the tracker's (``entities``, ``subject``, ``true_timestamp``, ``event_id``).
        """
        head = self._head
        base_subject = self._subject_fields
        if head is None or base_subject is None:
            raise NeedsModel
        event_id = options.get("event_id")
        if not event_id:
            eid = self._event_ids()
        elif type(event_id) is uuid.UUID:
            eid = str(event_id)
        else:
            raise NeedsModel
        payload = {"e": code, "eid": eid, **head, "dtm": str(int(self._clock() * 1000))}
        if (true_timestamp := options.get("true_timestamp")) is not None:
            if type(true_timestamp) is not datetime:
                raise NeedsModel
            payload["ttm"] = str(ms_from_datetime(true_timestamp))
        if page is not None:
            payload.update(page)
        if options.get("subject") is not None:
            merged = {**base_subject, **subject_fields(options["subject"])}
            payload.update((key, merged[key]) for key in _SUBJECT_KEYS if key in merged)
        elif base_subject:
            payload.update(base_subject)
        if kind:
            payload.update(kind)
        if entities := options.get("entities"):
            payload[self._contexts_key] = self.contexts(entities)
        return payload

    def contexts(self, entities: object) -> str:
        """The ``co``/``cx`` value for a sequence of entities."""
        if not isinstance(entities, Sequence) or isinstance(entities, str):
            raise NeedsModel
        if len(entities) > MAX_ENTITIES:
            raise NeedsModel
        return self._json({**_CONTEXTS_HEAD, "data": [self_describing(e) for e in entities]})

    def unstruct(self, event: object) -> Payload:
        """The ``ue_pr``/``ue_px`` field of a self-describing event."""
        wrapper = {"schema": UNSTRUCT_EVENT_URI, "data": self_describing(event)}
        return {self._unstruct_key: self._json(wrapper)}

    def _json(self, document: dict[str, Any]) -> str:
        try:
            raw = orjson.dumps(document)
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
    fields = {"url": text(url, 4096)}
    if title is not None:
        fields["page"] = text(title, 2000)
    if referrer is not None:
        fields["refr"] = text(referrer, 4096)
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
