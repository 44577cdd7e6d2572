"""The tracker facade: builds tracker-protocol events and hands them to one or more emitters.

Events obey the limits of the shared event model (``tracking_common.events``), as the API's
do, and come out as ``tracking_common.protocol.to_payload`` renders them: every value a
string, entities in ``co``/``cx``, self-describing data in ``ue_pr``/``ue_px``. The usual
input is written directly as the event's JSON bytes, less the opening brace, by the fast
path (``fast_payload``) and handed to each emitter's ``intake`` (to ``add_json`` with the
brace put back, or decoded for an emitter that only has ``add``); input it does not vouch
for is built as the model and rendered by ``to_payload``, which also words every refusal.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import orjson
from pydantic import ValidationError

from tracking_common.emitter.errors import BufferFullError
from tracking_common.emitter.fast_fields import (
    NeedsModel,
    page_fields,
    ping_fields,
    struct_fields,
)
from tracking_common.emitter.fast_payload import PayloadBuilder
from tracking_common.emitter.ports import Clock, Emitter, EventIntake
from tracking_common.errors import InvalidEventError
from tracking_common.events import (
    PagePing,
    PageView,
    Platform,
    SelfDescribing,
    SelfDescribingJson,
    StructEvent,
    Subject,
    TrackedEvent,
    utc_from_ms,
)
from tracking_common.protocol import Payload, issues_from_validation_error, to_payload

__all__ = ["TRACKER_VERSION", "Tracker"]

TRACKER_VERSION: Final = "py-tracking-common-0.1.0"
_T = TypeVar("_T")
_OPTIONS: Final = frozenset({"entities", "subject", "true_timestamp", "event_id"})

Entity = SelfDescribingJson | Mapping[str, Any]


class Tracker:
    """Tracks events to every emitter given (fan-out), with shared namespace, app and subject.

    Each ``track_*`` method returns the event's ``eid``. Invalid input raises
    ``InvalidEventError`` listing every problem. When an emitter is full the event is still
    offered to the others, then ``BufferFullError`` is raised (the first one).
    """

    def __init__(
        self,
        emitters: Emitter | Sequence[Emitter],
        *,
        namespace: str | None = None,
        app_id: str | None = None,
        platform: Platform = Platform.SERVER,
        subject: Subject | None = None,
        encode_base64: bool = False,
        tracker_version: str = TRACKER_VERSION,
        clock: Clock = time.time,
    ) -> None:
        self.emitters: tuple[Emitter, ...] = (
            tuple(emitters) if isinstance(emitters, Sequence) else (emitters,)
        )
        if not self.emitters:
            raise ValueError("a tracker needs at least one emitter")
        self._intakes = tuple(_json_intake(emitter) for emitter in self.emitters)
        # One emitter (the usual case) takes the bytes straight, its errors raised as they are.
        self._send_json = self._intakes[0] if len(self._intakes) == 1 else self._fan_out
        self._common = {
            "namespace": namespace,
            "app_id": app_id,
            "platform": platform,
            "tracker_version": tracker_version,
        }
        self._base64 = encode_base64
        self._clock = clock
        self._fast = PayloadBuilder(
            namespace=namespace,
            app_id=app_id,
            platform=platform,
            tracker_version=tracker_version,
            subject=subject,
            encode_base64=encode_base64,
            clock=clock,
        )

    @property
    def subject(self) -> Subject | None:
        """The subject every event carries (a per-event ``subject`` overrides its fields)."""
        return self._fast.subject

    @subject.setter
    def subject(self, subject: Subject | None) -> None:
        self._fast.subject = subject

    # -- event types -----------------------------------------------------------------------

    def track_page_view(
        self,
        url: str,
        *,
        title: str | None = None,
        referrer: str | None = None,
        entities: Sequence[Entity] | None = None,
        **options: Any,
    ) -> str:
        """A page view. ``options``: subject, true_timestamp, event_id."""
        # ``entities`` is named: the usual call then builds no options dict, and the usual
        # page view is checked and written by the builder without looking into one.
        if options and not _OPTIONS.issuperset(options):
            _refuse_options(options)
        try:
            data, eid = self._fast.page_view(url, title, referrer, entities, options)
        except NeedsModel:
            if entities is not None:
                options = {**options, "entities": entities}
            return self._track(PageView, {"page": _page(url, title, referrer)}, options)
        self._send_json(data)
        return eid

    def track_page_ping(
        self,
        url: str,
        *,
        title: str | None = None,
        referrer: str | None = None,
        min_x_offset: int | None = None,
        max_x_offset: int | None = None,
        min_y_offset: int | None = None,
        max_y_offset: int | None = None,
        **options: Any,
    ) -> str:
        """A page ping with scroll offsets."""
        if options and not _OPTIONS.issuperset(options):
            _refuse_options(options)
        offsets = (min_x_offset, max_x_offset, min_y_offset, max_y_offset)
        try:
            page = page_fields(url, title, referrer)
            data, eid = self._fast.build(b"pp", page, ping_fields(offsets), options)
        except NeedsModel:
            fields = {
                "page": _page(url, title, referrer),
                "min_x_offset": min_x_offset,
                "max_x_offset": max_x_offset,
                "min_y_offset": min_y_offset,
                "max_y_offset": max_y_offset,
            }
            return self._track(PagePing, fields, options)
        self._send_json(data)
        return eid

    def track_struct_event(
        self,
        category: str,
        action: str,
        *,
        label: str | None = None,
        property_: str | None = None,
        value: float | None = None,
        **options: Any,
    ) -> str:
        """A structured event (category, action, label, property, value)."""
        if options and not _OPTIONS.issuperset(options):
            _refuse_options(options)
        try:
            kind = struct_fields(category, action, label, property_, value)
            data, eid = self._fast.build(b"se", None, kind, options)
        except NeedsModel:
            fields = {
                "category": category,
                "action": action,
                "label": label,
                "property": property_,
                "value": value,
            }
            return self._track(StructEvent, fields, options)
        self._send_json(data)
        return eid

    def track_self_describing_event(self, event: Entity, **options: Any) -> str:
        """A self-describing event: ``{"schema": "iglu:...", "data": {...}}``."""
        if options and not _OPTIONS.issuperset(options):
            _refuse_options(options)
        try:
            data, eid = self._fast.build(b"ue", None, self._fast.unstruct(event), options)
        except NeedsModel:
            return self._track(SelfDescribing, {"event": event}, options)
        self._send_json(data)
        return eid

    def track(self, event: TrackedEvent) -> str:
        """Any event already built as the model; the tracker's defaults are not applied."""
        self.track_payload(to_payload(event, base64_encode=self._base64))
        return str(event.event_id)

    def track_payload(self, payload: Mapping[str, str]) -> None:
        """A ready tracker-protocol payload, to every emitter."""
        _offer([emitter.add for emitter in self.emitters], payload)

    # -- lifecycle -------------------------------------------------------------------------

    def flush_nowait(self) -> None:
        """Ask every emitter to send what it holds."""
        for emitter in self.emitters:
            emitter.flush_nowait()

    async def flush(self) -> None:
        """Flush every emitter and wait for the events taken so far to be settled."""
        for emitter in self.emitters:
            await emitter.flush()

    async def close(self, timeout_s: float | None = None) -> None:
        """Close every emitter (each bounded by ``timeout_s``)."""
        for emitter in self.emitters:
            await emitter.close(timeout_s)

    # -- building --------------------------------------------------------------------------

    def _fan_out(self, data: bytes) -> None:
        """An event's JSON object less its brace, to every emitter (as ``track_payload``)."""
        _offer(self._intakes, data)

    def _track(self, model: type[Any], fields: dict[str, Any], options: dict[str, Any]) -> str:
        """The model path: validate as the event model, render with ``to_payload``."""
        document: dict[str, Any] = {
            **self._common,
            **{key: value for key, value in fields.items() if value is not None},
            "event_id": options.get("event_id") or uuid.uuid4(),
            "created_at": utc_from_ms(int(self._clock() * 1000)),
        }
        subject = _merge(self._fast.subject, options.get("subject"))
        if subject is not None:
            document["subject"] = subject
        if options.get("entities"):
            document["entities"] = list(options["entities"])
        true_timestamp: datetime | None = options.get("true_timestamp")
        if true_timestamp is not None:
            document["true_timestamp"] = true_timestamp
        try:
            event = model.model_validate(document)
        except ValidationError as exc:
            raise InvalidEventError(issues_from_validation_error(exc)) from exc
        payload: Payload = to_payload(event, base64_encode=self._base64)
        self.track_payload(payload)
        return payload["eid"]


def _offer(intakes: Sequence[Callable[[_T], None]], event: _T) -> None:
    """``event`` to every intake; a full one does not keep it from the others, and the first
    ``BufferFullError`` is raised at the end."""
    refused: BufferFullError | None = None
    for intake in intakes:
        try:
            intake(event)
        except BufferFullError as exc:
            refused = refused or exc
    if refused is not None:
        raise refused


def _json_intake(emitter: Emitter) -> EventIntake:
    """How ``emitter`` takes an event's JSON bytes less the opening brace: its ``intake``,
    else its ``add_json`` with the brace put back, else decoded to ``add``."""
    intake: Callable[[], EventIntake] | None = getattr(emitter, "intake", None)
    if intake is not None:
        return intake()
    add_json: Callable[[bytes], None] | None = getattr(emitter, "add_json", None)
    if add_json is not None:
        return lambda data: add_json(b"{" + data)

    def add_decoded(data: bytes) -> None:
        emitter.add(orjson.loads(b"{" + data))

    return add_decoded


def _refuse_options(options: Mapping[str, Any]) -> None:
    unknown = set(options) - _OPTIONS
    raise TypeError(f"unexpected options: {', '.join(sorted(unknown))}")


def _page(url: str, title: str | None, referrer: str | None) -> dict[str, str]:
    page = {"url": url, "title": title, "referrer": referrer}
    return {key: value for key, value in page.items() if value is not None}


def _merge(base: Subject | None, override: Subject | None) -> Subject | None:
    if base is None or override is None:
        return override or base
    # The override's own values (not model_dump's dicts), so nested models stay models.
    fields = {name: getattr(override, name) for name in Subject.model_fields}
    return base.model_copy(update={k: v for k, v in fields.items() if v is not None})
