"""The event model: the four Snowplow event types, their subject, page and entities.

This is the one typed model of a tracking event. The ``/v1`` JSON API accepts it as is,
tracker-protocol input is mapped onto it (``tracking_common.protocol``), and its Kafka form
is the event-record contract (``tracking_common.record``).

String limits follow the column sizes of Snowplow's ``atomic`` schema, so an event accepted
here is not truncated or rejected further down a Snowplow pipeline.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from tracking_common.iglu import IGLU_URI_PATTERN

__all__ = [
    "MAX_ENTITIES",
    "EventType",
    "Page",
    "PagePing",
    "PageView",
    "Platform",
    "Resolution",
    "SelfDescribing",
    "SelfDescribingJson",
    "StructEvent",
    "Subject",
    "TrackedEvent",
    "event_adapter",
]

MAX_ENTITIES: Final = 50
"""Most entities (contexts) one event may carry."""

Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text128 = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Text1000 = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Text2000 = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Text4096 = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class EventType(StrEnum):
    """The event types, by their ``/v1`` name; ``protocol`` maps them to ``e`` codes."""

    PAGE_VIEW = "page_view"
    PAGE_PING = "page_ping"
    STRUCT = "struct"
    SELF_DESCRIBING = "self_describing"


class Platform(StrEnum):
    """The platform codes Snowplow Enrich accepts for ``p``."""

    WEB = "web"
    MOBILE = "mob"
    PC = "pc"
    SERVER = "srv"
    APP = "app"
    TV = "tv"
    CONSOLE = "cnsl"
    IOT = "iot"
    HEADSET = "headset"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Resolution(_Model):
    """A width and height in pixels (``res``, ``vp`` as ``WxH``)."""

    width: int = Field(ge=0, le=100_000)
    height: int = Field(ge=0, le=100_000)


class SelfDescribingJson(_Model):
    """An Iglu self-describing JSON: a schema URI and the data it describes."""

    schema_: Annotated[str, StringConstraints(max_length=512, pattern=IGLU_URI_PATTERN)] = Field(
        alias="schema", examples=["iglu:com.acme/button_click/jsonschema/1-0-0"]
    )
    data: dict[str, Any] = Field(examples=[{"button_id": "signup"}])

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def as_json(self) -> dict[str, Any]:
        """The ``{"schema": ..., "data": ...}`` form."""
        return {"schema": self.schema_, "data": self.data}


class Subject(_Model):
    """Who and where: the user, their device and their session."""

    user_id: Text255 | None = Field(default=None, description="Business user id (`uid`).")
    domain_user_id: Text128 | None = Field(default=None, description="Cookie id (`duid`).")
    network_user_id: Text128 | None = Field(default=None, description="`tnuid`.")
    session_id: Text128 | None = Field(default=None, description="`sid`.")
    session_index: int | None = Field(default=None, ge=0, le=2**31 - 1, description="`vid`.")
    ip_address: Text128 | None = Field(default=None, description="`ip`.")
    useragent: Text1000 | None = Field(default=None, description="`ua`.")
    language: Text255 | None = Field(default=None, description="`lang`, e.g. en-GB.")
    timezone: Text255 | None = Field(default=None, description="`tz`, e.g. Europe/London.")
    screen_resolution: Resolution | None = Field(default=None, description="`res`.")
    viewport: Resolution | None = Field(default=None, description="`vp`.")
    color_depth: int | None = Field(default=None, ge=0, le=1024, description="`cd`.")


class Page(_Model):
    """The page an event happened on."""

    url: Text4096 = Field(examples=["https://example.com/pricing"])
    title: Text2000 | None = None
    referrer: Text4096 | None = None


class _EventBase(_Model):
    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        description="Unique id (`eid`); generated when absent. Downstream deduplicates on it.",
    )
    app_id: Text255 | None = Field(default=None, examples=["shop"])
    platform: Platform = Platform.WEB
    tracker_version: Text100 = Field(default="tp-api-1", description="`tv`.")
    namespace: Text128 | None = Field(default=None, description="Tracker namespace (`tna`).")
    created_at: datetime | None = Field(
        default=None, description="When the device created the event (`dtm`)."
    )
    sent_at: datetime | None = Field(
        default=None, description="When the device sent the event (original `stm`)."
    )
    true_timestamp: datetime | None = Field(
        default=None, description="Caller-asserted true time (`ttm`)."
    )
    subject: Subject | None = None
    page: Page | None = None
    entities: list[SelfDescribingJson] = Field(
        default_factory=list, max_length=MAX_ENTITIES, description="Attached entities (contexts)."
    )


class PageView(_EventBase):
    """A page view (`e=pv`)."""

    event_type: Literal[EventType.PAGE_VIEW] = EventType.PAGE_VIEW
    page: Page


class PagePing(_EventBase):
    """A page ping (`e=pp`): activity while a page stays open, with scroll offsets."""

    event_type: Literal[EventType.PAGE_PING] = EventType.PAGE_PING
    page: Page
    min_x_offset: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    max_x_offset: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    min_y_offset: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    max_y_offset: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class StructEvent(_EventBase):
    """A structured event (`e=se`): Snowplow's five-field custom event."""

    event_type: Literal[EventType.STRUCT] = EventType.STRUCT
    category: Text1000
    action: Text1000
    label: Text4096 | None = None
    property: Text1000 | None = None
    value: float | None = Field(default=None, allow_inf_nan=False)


class SelfDescribing(_EventBase):
    """A self-describing event (`e=ue`): custom data checked against its Iglu schema."""

    event_type: Literal[EventType.SELF_DESCRIBING] = EventType.SELF_DESCRIBING
    event: SelfDescribingJson


TrackedEvent = Annotated[
    PageView | PagePing | StructEvent | SelfDescribing, Field(discriminator="event_type")
]
"""Any tracked event, told apart by ``event_type``."""

_ADAPTER: Final[TypeAdapter[TrackedEvent]] = TypeAdapter(TrackedEvent)


def event_adapter() -> TypeAdapter[TrackedEvent]:
    """The shared validator for :data:`TrackedEvent` (built once)."""
    return _ADAPTER


def utc_from_ms(milliseconds: int) -> datetime:
    """A timezone-aware UTC datetime from milliseconds since the epoch."""
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def ms_from_datetime(moment: datetime) -> int:
    """Milliseconds since the epoch; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
