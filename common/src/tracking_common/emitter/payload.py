"""Request bodies: ``payload_data`` 1-0-4 POST bodies and ``/i`` GET query strings.

An event is held as its JSON object without the opening brace: serialised once when it is
added as a mapping, or sliced from bytes already encoded (the forwarder passes the payload's
bytes as they are in the Kafka record, checked by ``tracking_common.record``). Each attempt
splices the body: the ``payload_data`` head, then ``{"stm":"<ms>",`` + event joined with
``,``, then ``]}``. So ``stm`` is fresh on every attempt and nothing is parsed or encoded
again. This relies on a payload never holding ``stm`` (which the record contract forbids and
:func:`encode_event` drops) and never being empty. Sizes are exact: a POST body's length is
``ENVELOPE_BYTES + sum(event.size)`` (``stm`` has 13 digits until the year 2286).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import urlencode

import msgspec
import orjson

if TYPE_CHECKING:
    from tracking_common.emitter.outcomes import EventResult, ResultGroup

__all__ = [
    "ENVELOPE_BYTES",
    "GET_PATH",
    "PAYLOAD_DATA_URI",
    "POST_PATH",
    "STM_BYTES",
    "EncodedPayload",
    "PendingEvent",
    "body_size",
    "encode_event",
    "encoded_size",
    "get_query",
    "post_body",
]

POST_PATH: Final = "/com.snowplowanalytics.snowplow/tp2"
GET_PATH: Final = "/i"
PAYLOAD_DATA_URI: Final = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
_PREFIX: Final = b'{"schema":"' + PAYLOAD_DATA_URI.encode() + b'","data":['
_SUFFIX: Final = b"]}"
STM_BYTES: Final = len(b'{"stm":"1700000000000",')
"""What the opening brace and ``stm`` add to one event."""
ENVELOPE_BYTES: Final = len(_PREFIX) + len(_SUFFIX) - 1
"""The envelope's bytes, less the comma the first event does not need."""
_GET_STM_BYTES: Final = len("&stm=1700000000000")

EncodedPayload: TypeAlias = bytes | memoryview
"""One tracker-protocol payload as a JSON object's bytes (a slice of a larger buffer is fine)."""


class PendingEvent(msgspec.Struct, eq=False):
    """One event held by the emitter: its serialised form, request size and caller's tag.

    A Struct (built in C, identity equality): one is made per event taken, and a class with a
    Python ``__init__`` cost 0.59 us against 0.14 us (perf_counter_ns, 1,000 events, best of
    200, alternated).
    """

    data: EncodedPayload
    size: int
    tag: Any = None
    waiter: asyncio.Future[EventResult] | None = None
    group: ResultGroup | None = None

    def payload(self) -> dict[str, str]:
        """The tracker-protocol payload (without ``stm``)."""
        decoded: dict[str, str] = orjson.loads(b"{" + self.data)
        return decoded

    @property
    def event_id(self) -> str | None:
        """The event's ``eid``, if it has one."""
        data = bytes(self.data)
        start = data.find(b'"eid":"')
        if start < 0:
            return None
        start += 7
        return data[start : data.index(b'"', start)].decode()

    def __repr__(self) -> str:
        return f"PendingEvent(eid={self.event_id!r}, size={self.size}, tag={self.tag!r})"


def encode_event(payload: Mapping[str, str], *, get: bool = False) -> tuple[bytes, int]:
    """Serialise one payload; return its form for :class:`PendingEvent` and its request size.

    A POST size counts the event, its ``stm`` and its separating comma; a GET size is the
    query string's length with ``stm``. Raises TypeError/ValueError for a payload that is not
    a flat string mapping (orjson's errors) or is empty.
    """
    if "stm" in payload:
        payload = {key: value for key, value in payload.items() if key != "stm"}
    if not payload:
        raise ValueError("a tracker-protocol payload cannot be empty")
    encoded = orjson.dumps(payload)
    data = encoded[1:]
    if get:
        return data, len(urlencode(payload)) + _GET_STM_BYTES
    return data, len(data) + STM_BYTES + 1


def post_body(events: Sequence[PendingEvent], stm_ms: int) -> bytes:
    """The ``payload_data`` body for ``events`` (not empty) with ``stm`` = ``stm_ms`` on each.

    One join writes the body, the envelope's head glued to the first event and its tail to the
    last. A join then two concatenations copied the body three times: for 1,000 events
    (470 kB) 540 us against 22 us, each copy into fresh pages; for 10, the same 0.8 us.
    """
    head = b'{"stm":"%d",' % stm_ms
    parts: list[EncodedPayload] = [event.data for event in events]
    parts[0] = _PREFIX + head + parts[0]
    parts[-1] = b"".join((parts[-1], _SUFFIX))
    return (b"," + head).join(parts)


def encoded_size(payload: EncodedPayload) -> int:
    """The request bytes of an already encoded payload (a JSON object's bytes) in a POST."""
    return len(payload) + STM_BYTES


def get_query(event: PendingEvent, stm_ms: int) -> str:
    """The ``/i`` query string for ``event`` with ``stm``."""
    payload = event.payload()
    payload["stm"] = str(stm_ms)
    return urlencode(payload)


def body_size(events: Sequence[PendingEvent]) -> int:
    """The exact length of a POST body carrying ``events``."""
    return ENVELOPE_BYTES + sum(event.size for event in events)
