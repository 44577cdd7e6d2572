"""An :class:`~forwarder_service.ports.EventSink` over the emitter core of ``tracking_common``.

All batching, retrying, splitting and classification is the core's
(:class:`tracking_common.emitter.AsyncEmitter`); this adapter keeps the forwarder's
constructor and port, and translates outcomes for its
:class:`~forwarder_service.ports.DeliveryListener`:

- success: the events are reported delivered;
- retry (and network errors, timeouts): retried after a capped exponential backoff with full
  jitter, or ``Retry-After``; after ``max_attempts`` (0 = never) RETRIES_EXHAUSTED;
- split (413): the batch is halved; a single event still refused is reported OVERSIZE, and so
  is an event that alone exceeds ``batch_max_bytes`` (without a request);
- reject: bisected (``bisect_rejects``); single events rejected are NON_RETRYABLE_STATUS;
- setup (and TLS/DNS errors): retried forever every ``setup_backoff_s``, never an event's
  failure; :attr:`setup_failing` stays true until the collector answers otherwise.

Every event's fate is reported exactly once. :meth:`close` reports what is left ABANDONED.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from tracking_common.emitter import (
    AiohttpClient,
    AsyncEmitter,
    DeliveryFailure,
    EmitterClosedError,
    HttpClient,
    PendingEvent,
)
from tracking_common.emitter import RequestReport as CoreReport
from tracking_common.emitter import RetryPolicy as CoreRetryPolicy
from tracking_common.emitter.payload import POST_PATH, EncodedPayload

from forwarder_service.classification import StatusTable
from forwarder_service.ports import (
    DeliveryListener,
    FailureKind,
    RecordTag,
    RequestReport,
    SendFailure,
)

__all__ = ["COLLECTOR_PATH", "HttpSink", "RetryPolicy"]

COLLECTOR_PATH: Final = POST_PATH


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; ``max_attempts`` 0 retries forever."""

    max_attempts: int = 0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def core(self) -> CoreRetryPolicy:
        """The emitter core's policy."""
        return CoreRetryPolicy(
            max_attempts=self.max_attempts or None,
            base_delay_s=self.base_delay_s,
            max_delay_s=self.max_delay_s,
        )

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        return self.core().delay(attempt, rand)


def _tags(events: Sequence[PendingEvent]) -> list[RecordTag]:
    return [event.tag for event in events]


class _Translator:
    """The core's listener, reporting to the forwarder's DeliveryListener."""

    def __init__(self, listener: DeliveryListener) -> None:
        self._listener = listener

    def delivered(self, events: Sequence[PendingEvent]) -> None:
        self._listener.delivered(_tags(events))

    def failed(self, events: Sequence[PendingEvent], failure: DeliveryFailure) -> None:
        kind = FailureKind(failure.reason.value)
        self._listener.failed(
            [
                SendFailure(
                    tag=event.tag,
                    kind=kind,
                    status=failure.status,
                    error_class=failure.error_class,
                    message=failure.message,
                    attempts=failure.attempts,
                    first_failure_ms=failure.first_failure_ms,
                    last_failure_ms=failure.last_failure_ms,
                )
                for event in events
            ]
        )

    def request_finished(self, report: CoreReport) -> None:
        self._listener.request_finished(
            RequestReport(
                tags=_tags(report.events),
                status=report.status,
                failure_class=report.failure_class,
                start_ns=report.start_ns,
                end_ns=report.end_ns,
                will_retry=report.will_retry,
            )
        )

    def setup_failure(self, status: int | None, message: str) -> None:
        self._listener.setup_failure(status, message)


class HttpSink:
    """Batches events and sends them to the collector (see the module docstring)."""

    def __init__(
        self,
        *,
        collector_url: str,
        listener: DeliveryListener,
        table: StatusTable | None = None,
        batch_max_events: int = 500,
        batch_max_bytes: int = 900_000,
        linger_s: float = 0.05,
        max_in_flight: int = 4,
        request_timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        setup_backoff_s: float = 30.0,
        bisect_rejects: bool = True,
        capacity_events: int = 1_000_000,
        capacity_bytes: int = 1 << 30,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        client: HttpClient | None = None,
    ) -> None:
        self._owns_client = client is None
        self._client: HttpClient = client or AiohttpClient(
            pool_size=max_in_flight,
            connect_timeout_s=min(5.0, request_timeout_s),
            read_timeout_s=request_timeout_s,
            total_timeout_s=request_timeout_s,
        )
        self._emitter = AsyncEmitter(
            collector_url,
            batch_size=batch_max_events,
            byte_limit=batch_max_bytes,
            flush_interval_s=linger_s,
            max_in_flight=max_in_flight,
            buffer_capacity=capacity_events,
            capacity_bytes=capacity_bytes,
            retry=(retry or RetryPolicy()).core(),
            status_table=table or StatusTable(),
            bisect_rejects=bisect_rejects,
            setup_backoff_s=setup_backoff_s,
            on_oversize="fail",
            listener=_Translator(listener),
            client=self._client,
            sleep=sleep,
            rand=rand,
        )

    @property
    def setup_failing(self) -> bool:
        """True while the collector answers with setup failures."""
        return self._emitter.setup_failing

    def backlog(self) -> tuple[int, int]:
        """Events and bytes buffered, queued or in flight."""
        return self._emitter.pending

    def add_encoded(self, payloads: Sequence[EncodedPayload], tags: Sequence[RecordTag]) -> int:
        """Buffer the prefix of ``payloads`` that fits; return how many (0 once closed)."""
        try:
            return self._emitter.add_encoded(payloads, tags)
        except EmitterClosedError:
            return 0

    def discard(self, predicate: Callable[[RecordTag], bool]) -> int:
        """Drop buffered and queued (not in-flight) events whose tag matches."""
        return self._emitter.discard(predicate)

    async def start(self) -> None:
        """Start the sending tasks (the connection pool opens on the first request)."""
        await self._emitter.start()

    async def flush(self) -> None:
        """Send what is buffered now and wait until those events are settled."""
        await self._emitter.flush()

    async def close(self, timeout_s: float) -> None:
        """Flush for up to ``timeout_s``, then stop; report leftovers ABANDONED."""
        await self._emitter.close(timeout_s)
        if self._owns_client:
            await self._client.close()
