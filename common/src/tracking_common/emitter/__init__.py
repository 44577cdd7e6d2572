"""The emitter core: Snowplow-tracker emitter semantics on asyncio.

``AsyncEmitter`` batches tracker-protocol payloads and delivers them to a collector through
an ``HttpClient`` (default: ``Http1Client``, keep-alive HTTP/1.1 on asyncio's transports;
``AiohttpClient`` for what it does not do), keeping them in an ``EventStore`` (default:
bounded in memory), retrying per a ``RetryPolicy`` and a ``StatusTable``. ``Tracker`` builds
the events and fans them out to one or more emitters. See ``docs/emitter.md``.
"""

from tracking_common.emitter.emitter import AsyncEmitter, Emitter, EmitterState
from tracking_common.emitter.errors import (
    BufferFullError,
    EmitterClosedError,
    EmitterError,
    EventTooLargeError,
    TransportError,
    TransportErrorKind,
)
from tracking_common.emitter.http1_client import Http1Client
from tracking_common.emitter.http_client import AiohttpClient
from tracking_common.emitter.instruments import EmitterInstruments
from tracking_common.emitter.outcomes import (
    BatchResult,
    DeliveryFailure,
    EmitterListener,
    EventResult,
    FailureReason,
    OnFailure,
    OnSuccess,
    RequestReport,
)
from tracking_common.emitter.payload import GET_PATH, POST_PATH, PendingEvent
from tracking_common.emitter.ports import EventStore, HttpClient, HttpResponse
from tracking_common.emitter.retry import RetryPolicy
from tracking_common.emitter.status import (
    FORWARDER_DEFAULTS,
    TRACKER_DEFAULTS,
    StatusClass,
    StatusTable,
    parse_status_overrides,
)
from tracking_common.emitter.store import InMemoryEventStore
from tracking_common.emitter.tracker import TRACKER_VERSION, Tracker

__all__ = [
    "FORWARDER_DEFAULTS",
    "GET_PATH",
    "POST_PATH",
    "TRACKER_DEFAULTS",
    "TRACKER_VERSION",
    "AiohttpClient",
    "AsyncEmitter",
    "BatchResult",
    "BufferFullError",
    "DeliveryFailure",
    "Emitter",
    "EmitterClosedError",
    "EmitterError",
    "EmitterInstruments",
    "EmitterListener",
    "EmitterState",
    "EventResult",
    "EventStore",
    "EventTooLargeError",
    "FailureReason",
    "Http1Client",
    "HttpClient",
    "HttpResponse",
    "InMemoryEventStore",
    "OnFailure",
    "OnSuccess",
    "PendingEvent",
    "RequestReport",
    "RetryPolicy",
    "StatusClass",
    "StatusTable",
    "Tracker",
    "TransportError",
    "TransportErrorKind",
    "parse_status_overrides",
]
