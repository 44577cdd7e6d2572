"""The tracker's fast path: each event written as its JSON bytes, as Snowplow's trackers do.

Building each event as the pydantic model and rendering it with ``protocol.to_payload`` costs
more than sending it. The :class:`PayloadBuilder` writes the same payload straight away,
after the checks of ``fast_fields`` (the limits the event model enforces).

It vouches only for input it fully understands. Anything else, whether it breaks a limit or
is merely unusual (a string event id, a ``Platform`` given as text, a dict subject, an ``int``
subclass), raises :class:`NeedsModel`, and the tracker takes the model path, which accepts
it exactly as before or raises ``InvalidEventError`` listing every problem. So both paths
accept the same inputs and render the same payload (the unit tests check this with
generated input).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import orjson

from tracking_common.emitter.fast_fields import (
    CHECKED_SCHEMAS,
    SUBJECT_KEYS,
    NeedsModel,
    optional_text,
    page_fields,
    self_describing,
    subject_fields,
    text,
)
from tracking_common.event_ids import new_event_id
from tracking_common.events import MAX_ENTITIES, Platform, Subject, ms_from_datetime
from tracking_common.protocol import CONTEXTS_URI, UNSTRUCT_EVENT_URI, Payload

__all__ = ["PayloadBuilder"]

_CONTEXTS_HEAD: Final = b'{"schema":"' + CONTEXTS_URI.encode() + b'","data":'
_UNSTRUCT_HEAD: Final = b'{"schema":"' + UNSTRUCT_EVENT_URI.encode() + b'","data":'


class PayloadBuilder:
    """Builds payloads for one tracker's namespace, app, platform, version and subject.

    A payload is written as the JSON object's bytes the emitter sends, less the opening
    brace (the form ``AsyncEmitter`` holds events in, taken by its ``intake`` as they are):
    the fields every event of the tracker shares (``tv``, ``p``, ``aid``, ``tna``) are
    encoded once, and an event's own fields in one ``orjson`` call. ``b"{"`` and the bytes
    decode to exactly the dict ``to_payload`` renders, keys in the same order.

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
        """One event's JSON object less its opening brace and its ``eid``: ``e``, the page,
        subject and kind's fields.

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
        return b'"e":"%b","eid":"%b%b%d"%b,%b' % (code, eid.encode(), head, dtm, ttm, own[1:]), eid

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
            subject = {key: merged[key] for key in SUBJECT_KEYS if key in merged}
        return eid, ttm, subject

    def page_view(
        self,
        url: object,
        title: object,
        referrer: object,
        entities: object,
        options: Mapping[str, Any],
    ) -> tuple[bytes, str]:
        """``build`` for a page view, in one frame for the usual case.

        The usual case: the tracker's fields vouched for, no tracker subject, and no options
        (``entities`` comes as its own argument); anything else goes through :meth:`build`.
        """
        head = self._head
        fields = page_fields(url, title, referrer)
        if head is None or not self._plain or options:
            if entities is not None:
                options = {**options, "entities": entities}
            return self.build(b"pv", fields, {}, options)
        if entities:
            fields[self._contexts_key] = self._contexts(entities)
        eid = self._event_ids()
        try:
            own = orjson.dumps(fields)
        except TypeError:
            raise NeedsModel from None
        dtm = int(self._clock() * 1000)
        return b'"e":"pv","eid":"%b%b%d",%b' % (eid.encode(), head, dtm, own[1:]), eid

    def _contexts(self, entities: object) -> str:
        """The ``co``/``cx`` value: at most ``MAX_ENTITIES`` entities, as ``{"schema", "data"}``.

        A list of plain dicts whose schemas were seen before is encoded as it is (one check
        per entity, no copy); anything else goes through :func:`self_describing` one by one.
        """
        if type(entities) is list and len(entities) <= MAX_ENTITIES:
            plain = True
            try:
                for entity in entities:
                    # Subscripts, not get(): a dict of two other keys raises KeyError.
                    if (
                        type(entity) is not dict
                        or len(entity) != 2
                        or type(schema := entity["schema"]) is not str
                        or schema not in CHECKED_SCHEMAS
                        or type(entity["data"]) is not dict
                    ):
                        plain = False
                        break
            except KeyError:
                plain = False
            if not plain:
                entities = [self_describing(entity) for entity in entities]
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
