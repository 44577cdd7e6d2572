"""The event model as msgspec Structs: what the hot path decodes ``/v1`` events into.

The pydantic model (:mod:`tracking_common.events`) stays the documented model (it generates
the OpenAPI document and names every problem of a rejected event); these Structs check the
same types and limits while msgspec parses, in C. ``tests/unit/common/ingest`` holds the two
in agreement: a property test on generated valid and mutated events, and a test that both
declare the same fields with the same limits.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Final

import msgspec
from msgspec import Meta, Struct, field

from tracking_common.event_ids import new_event_uuid
from tracking_common.events import MAX_ENTITIES, EventType, Platform
from tracking_common.iglu import IGLU_URI_PATTERN

__all__ = [
    "BATCH_DECODER",
    "EVENT_DECODER",
    "BatchStruct",
    "EventStruct",
    "PagePingStruct",
    "PageStruct",
    "PageViewStruct",
    "ResolutionStruct",
    "SelfDescribingJsonStruct",
    "SelfDescribingStruct",
    "StructEventStruct",
    "SubjectStruct",
]

Text100 = Annotated[str, Meta(min_length=1, max_length=100)]
Text128 = Annotated[str, Meta(min_length=1, max_length=128)]
Text255 = Annotated[str, Meta(min_length=1, max_length=255)]
Text1000 = Annotated[str, Meta(min_length=1, max_length=1000)]
Text2000 = Annotated[str, Meta(min_length=1, max_length=2000)]
Text4096 = Annotated[str, Meta(min_length=1, max_length=4096)]
Pixels = Annotated[int, Meta(ge=0, le=100_000)]
Offset = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
_INT32_MAX: Final = 2**31 - 1


class _Closed(Struct, forbid_unknown_fields=True, gc=False):
    """Unknown fields are refused, as the pydantic model's ``extra="forbid"``.

    Untracked by the garbage collector: decoded JSON holds no cycle, and a request's Structs
    would otherwise count towards (and be walked by) every collection while it is in flight.
    """


class ResolutionStruct(_Closed):
    width: Pixels
    height: Pixels


class SelfDescribingJsonStruct(_Closed):
    schema_: Annotated[str, Meta(max_length=512, pattern=IGLU_URI_PATTERN)] = field(name="schema")
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The ``{"schema": ..., "data": ...}`` form."""
        return {"schema": self.schema_, "data": self.data}


class SubjectStruct(_Closed):
    user_id: Text255 | None = None
    domain_user_id: Text128 | None = None
    network_user_id: Text128 | None = None
    session_id: Text128 | None = None
    session_index: Annotated[int, Meta(ge=0, le=_INT32_MAX)] | None = None
    ip_address: Text128 | None = None
    useragent: Text1000 | None = None
    language: Text255 | None = None
    timezone: Text255 | None = None
    screen_resolution: ResolutionStruct | None = None
    viewport: ResolutionStruct | None = None
    color_depth: Annotated[int, Meta(ge=0, le=1024)] | None = None


class PageStruct(_Closed):
    url: Text4096
    title: Text2000 | None = None
    referrer: Text4096 | None = None


class _EventBase(_Closed, tag_field="event_type", kw_only=True):
    event_type: ClassVar[EventType]
    event_id: uuid.UUID = field(default_factory=new_event_uuid)
    app_id: Text255 | None = None
    platform: Platform = Platform.WEB
    tracker_version: Text100 = "tp-api-1"
    namespace: Text128 | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None
    true_timestamp: datetime | None = None
    subject: SubjectStruct | None = None
    page: PageStruct | None = None
    # A tuple, so an event without entities shares the empty one: a list apiece was one more
    # object for the collector per event, held (and promoted) for the whole request.
    entities: Annotated[tuple[SelfDescribingJsonStruct, ...], Meta(max_length=MAX_ENTITIES)] = ()


class PageViewStruct(_EventBase, tag=EventType.PAGE_VIEW.value):
    event_type: ClassVar[EventType] = EventType.PAGE_VIEW
    page: PageStruct


class PagePingStruct(_EventBase, tag=EventType.PAGE_PING.value):
    event_type: ClassVar[EventType] = EventType.PAGE_PING
    page: PageStruct
    min_x_offset: Offset | None = None
    max_x_offset: Offset | None = None
    min_y_offset: Offset | None = None
    max_y_offset: Offset | None = None


class StructEventStruct(_EventBase, tag=EventType.STRUCT.value):
    event_type: ClassVar[EventType] = EventType.STRUCT
    category: Text1000
    action: Text1000
    label: Text4096 | None = None
    property: Text1000 | None = None
    value: float | None = None


class SelfDescribingStruct(_EventBase, tag=EventType.SELF_DESCRIBING.value):
    event_type: ClassVar[EventType] = EventType.SELF_DESCRIBING
    event: SelfDescribingJsonStruct


EventStruct = PageViewStruct | PagePingStruct | StructEventStruct | SelfDescribingStruct
"""Any event, told apart by ``event_type`` (a tagged union)."""

EVENT_DECODER: Final = msgspec.json.Decoder(EventStruct)
"""Decodes one event's JSON bytes; raises msgspec.ValidationError on the first problem."""


class BatchStruct(_Closed):
    """A batch body: ``{"events": [...]}`` and nothing else."""

    events: list[EventStruct]


BATCH_DECODER: Final = msgspec.json.Decoder(BatchStruct)
"""Decodes a batch body's events in one call; raises on the first problem of any of them."""
