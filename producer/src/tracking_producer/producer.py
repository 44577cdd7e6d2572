"""``EventProducer``: tracking events from an internal service straight to Kafka, checked as the
API checks them.

An event is a ``/v1`` event (a dict of its JSON, or an instance of the
:mod:`tracking_common.events` model), or, through :meth:`EventProducer.send_payloads`, a
Snowplow tracker-protocol payload; :meth:`EventProducer.tracker` offers common's Snowplow-style
tracker on top. It goes through the API's own code: validated by
:class:`tracking_common.ingest.Ingestor` (the event model, the size limit, duplicate ids, Iglu
schemas from the same settings), turned into the contract record (``source: "internal"``, the
documented key and headers, the current trace context) and produced by the API's
:class:`~tracking_producer.publisher.KafkaPublisher` (acks=all, idempotent, zstd).

Delivery: a call returns once Kafka acknowledged every event of it on all in-sync replicas.
:class:`~tracking_producer.errors.InvalidEventError` means nothing of the call was produced
(calls are all-or-nothing for validation); :class:`~tracking_producer.errors.ProduceTimeoutError`
means Kafka did not acknowledge within ``produce_timeout_s``, counted from the call (waiting for
a first connection included). Some of those events may still land: retrying the error's
``events`` (each with its ``event_id`` set) lets downstream deduplicate. Rejected events are not
put on the bad-events topic: the caller has the error, and owns the fix.

Cancelling a call stops waiting; what was handed to Kafka may still land.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from opentelemetry.trace import SpanKind
from pydantic import BaseModel
from tracking_common.emitter.tracker import Tracker
from tracking_common.ingest import Rejection
from tracking_common.kafka_security import KafkaSecuritySettings
from tracking_common.tracing import trace_headers

from tracking_producer.checking import Checked, EventChecker
from tracking_producer.emitter import KafkaEmitter, OnFailure
from tracking_producer.errors import (
    InvalidEventError,
    KafkaRefusedError,
    NotProducedError,
    ProducerClosedError,
    ProduceTimeoutError,
    PublishError,
    SchemasUnavailableError,
)
from tracking_producer.instruments import ProducerInstruments
from tracking_producer.publisher import KafkaPublisher, Publisher
from tracking_producer.settings import DEFAULT_COMPRESSION, DEFAULT_LINGER_MS, Compression

__all__ = ["Event", "EventProducer"]

logger = logging.getLogger(__name__)

Event = Mapping[str, Any] | BaseModel
"""A ``/v1`` event: its JSON as a dict, or an instance of the ``tracking_common.events`` model."""

_CONNECT_POLL_S: Final = 0.02


class _State(enum.Enum):
    NEW = "new"
    STARTED = "started"
    STOPPED = "stopped"


class EventProducer:
    """Checks events as the API does and produces them as its records; an async context
    manager (``start``/``stop``, both idempotent; a stopped producer is not reused).

    Settings carry the API's names and defaults (``KAFKA_BOOTSTRAP_SERVERS``,
    ``EVENTS_TOPIC``, ``API_PRODUCE_TIMEOUT_S``, ``API_PRODUCER_LINGER_MS``, ...);
    ``security`` is the Kafka TLS/SASL settings; ``publisher`` replaces the Kafka publisher
    (tests pass a fake of the :class:`~tracking_producer.publisher.Publisher` port).
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str = "127.0.0.1:9092",
        topic: str = "events",
        produce_timeout_s: float = 10.0,
        linger_ms: int = DEFAULT_LINGER_MS,
        compression: Compression = DEFAULT_COMPRESSION,
        buffer_bytes: int = 64 * 1024 * 1024,
        security: KafkaSecuritySettings | None = None,
        iglu_schema_dir: Path | None = None,
        iglu_resolver_config: Path | None = None,
        iglu_resolve_timeout_s: float = 2.0,
        allow_unknown_schemas: bool = False,
        max_event_bytes: int = 65_536,
        max_json_depth: int = 32,
        batch_size: int = 500,
        stop_timeout_s: float = 10.0,
        client_id: str = "tracking-producer",
        publisher: Publisher | None = None,
    ) -> None:
        if produce_timeout_s <= 0:
            raise ValueError("produce_timeout_s must be positive")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.topic = topic
        self._timeout_s = produce_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._batch_size = batch_size
        self._publisher: Publisher = publisher or KafkaPublisher(
            bootstrap_servers,
            timeout_s=produce_timeout_s,
            buffer_bytes=buffer_bytes,
            linger_ms=linger_ms,
            compression=compression,
            client_id=client_id,
            security=security,
        )
        self._checker = EventChecker(
            topic=topic,
            iglu_schema_dir=iglu_schema_dir,
            iglu_resolver_config=iglu_resolver_config,
            iglu_resolve_timeout_s=iglu_resolve_timeout_s,
            allow_unknown_schemas=allow_unknown_schemas,
            max_event_bytes=max_event_bytes,
            max_json_depth=max_json_depth,
            batch_size=batch_size,
        )
        self._state = _State.NEW
        self._instruments = ProducerInstruments()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Read the Iglu settings and begin connecting to Kafka (returns at once)."""
        if self._state is _State.STOPPED:
            raise ProducerClosedError("this producer was stopped; create a new one")
        if self._state is _State.STARTED:
            return
        self._checker.ingestor()  # reads the Iglu settings now: a bad file fails start()
        await self._publisher.start()
        self._state = _State.STARTED

    async def stop(self, timeout_s: float | None = None) -> None:
        """Flush what Kafka has not acknowledged yet within ``timeout_s`` (the constructor's
        ``stop_timeout_s`` by default), then close. Idempotent."""
        state, self._state = self._state, _State.STOPPED
        if state is _State.STARTED:
            await self._publisher.stop(self._stop_timeout_s if timeout_s is None else timeout_s)
        await self._checker.close()

    # -- producing ---------------------------------------------------------------------------

    async def send(self, event: Event) -> str:
        """Produce one event; return its id once Kafka acknowledged it."""
        [event_id] = await self.send_many([event])
        return event_id

    async def send_many(self, events: Sequence[Event]) -> list[str]:
        """Produce ``events``, batched; return their ids (in order) once Kafka acknowledged
        them all. All or nothing for validation: one invalid event and nothing is produced."""
        with self._span("send_many", len(events)):
            checked = await self.check(events)
            if checked.rejections:
                self._reject(checked.rejections)
            await self.produce(checked)
            return checked.valid_ids

    async def send_payloads(self, payloads: Sequence[Mapping[str, str]]) -> list[str]:
        """Produce Snowplow tracker-protocol payloads (``payload_data`` items), checked as
        ``/tp2`` checks them; as :meth:`send_many` otherwise."""
        with self._span("send_payloads", len(payloads)):
            checked = await self.check(payloads, tracker_protocol=True)
            if checked.rejections:
                self._reject(checked.rejections)
            await self.produce(checked)
            return checked.valid_ids

    async def send_valid(self, events: Sequence[Any], *, tracker_protocol: bool = False) -> Checked:
        """Produce the valid ones of ``events`` and return what was found: the ids of those
        produced, the rejections of the others (for backfills that report bad lines rather
        than stop). Raises as :meth:`send_many` does when Kafka does not acknowledge."""
        with self._span("send_valid", len(events)):
            checked = await self.check(events, tracker_protocol=tracker_protocol)
            self._instruments.count("rejected", len(checked.rejections))
            await self.produce(checked)
            return checked

    async def check(self, events: Sequence[Any], *, tracker_protocol: bool = False) -> Checked:
        """Check ``events`` as :meth:`send_valid` would, producing nothing (works unstarted:
        a dry run needs no Kafka). Raises SchemasUnavailableError when a registry cannot
        answer (nothing was checked)."""
        if self._state is _State.STOPPED:
            raise ProducerClosedError("this producer was stopped; create a new one")
        trace = trace_headers()
        try:
            if tracker_protocol:
                return await self._checker.payloads(events, trace)
            return await self._checker.v1(events, trace)
        except SchemasUnavailableError as error:
            self._instruments.count("failed", len(events))
            logger.warning("%d events not checked: %s", len(events), error)
            raise

    def tracker(
        self,
        *,
        batch_size: int | None = None,
        capacity: int = 10_000,
        on_failure: OnFailure | None = None,
        **options: Any,
    ) -> Tracker:
        """Common's Snowplow-style :class:`~tracking_common.emitter.tracker.Tracker`
        (``track_page_view``, ``track_struct_event``, ``track_self_describing_event``,
        subject, entities), producing through this producer (:class:`KafkaEmitter`).

        ``options`` go to the Tracker (``namespace``, ``app_id``, ``subject``, ...). Its
        ``track_*`` calls return at once; ``await tracker.flush()`` waits until Kafka
        acknowledged what was tracked (flush before stopping the producer).
        """
        emitter = KafkaEmitter(
            self,
            batch_size=batch_size or self._batch_size,
            capacity=capacity,
            on_failure=on_failure,
        )
        return Tracker(emitter, **options)

    # -- the steps ---------------------------------------------------------------------------

    def _span(self, name: str, count: int) -> Any:
        return self._instruments.tracer.start_as_current_span(
            f"tracking_producer.{name}",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.destination.name": self.topic, "tracking.events": count},
        )

    def _reject(self, rejections: list[Rejection]) -> None:
        self._instruments.count("rejected", len(rejections))
        error = InvalidEventError(rejections)
        logger.warning("events refused, nothing produced: %s", error)
        raise error

    async def produce(self, checked: Checked) -> None:
        """Produce the valid events of ``checked`` (from :meth:`check`), within the deadline;
        raises ProduceTimeoutError or NotProducedError as :meth:`send_many` does."""
        if not checked.messages:
            return
        if self._state is not _State.STARTED:
            raise ProducerClosedError("start the producer first (or use it with `async with`)")
        produced = len(checked.messages)
        try:
            async with asyncio.timeout(self._timeout_s):
                # The publisher connects in the background and exposes its state, not an event
                # to await; the deadline bounds the wait.
                while not self._publisher.ready:
                    refusal = getattr(self._publisher, "refusal", None)  # KafkaPublisher's
                    if refusal is not None:
                        raise KafkaRefusedError(refusal)
                    await asyncio.sleep(_CONNECT_POLL_S)
                await self._publisher.publish(checked.messages)
        except (TimeoutError, PublishError) as exc:
            self._fail(checked, exc)
        self._instruments.count("produced", produced)

    def _fail(self, checked: Checked, exc: Exception) -> None:
        ids = checked.valid_ids
        self._instruments.count("failed", len(ids))
        kind = exc.kind if isinstance(exc, PublishError) else "timeout"
        logger.warning("%d events not acknowledged by Kafka (%s): %s", len(ids), kind, exc)
        retry = [
            _with_id(event, event_id)
            for event, event_id in zip(checked.events, checked.event_ids, strict=True)
            if event_id is not None
        ]
        if kind in {"timeout", "unavailable"}:
            message = f"Kafka did not acknowledge within {self._timeout_s:g} s ({kind})"
            raise ProduceTimeoutError(message, event_ids=ids, events=retry) from exc
        message = f"Kafka did not take the events ({kind}): {exc}"
        raise NotProducedError(message, event_ids=ids, events=retry) from exc


def _with_id(event: Any, event_id: str) -> Any:
    """``event`` with the id it was produced with, so a retry keeps it."""
    if isinstance(event, Mapping):
        key = "event_id" if "e" not in event else "eid"
        return event if event.get(key) == event_id else {**event, key: event_id}
    return event
