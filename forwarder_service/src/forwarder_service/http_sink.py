"""An :class:`~forwarder_service.ports.EventSink` over the emitter core of ``tracking_common``.

All batching, retrying, splitting and classification is the core's
(:class:`tracking_common.emitter.AsyncEmitter`), and so are the types it reports with: the
pipeline is the core's :class:`~tracking_common.emitter.EmitterListener`, each event's tag its
:class:`~forwarder_service.ports.RecordTag`. This adapter builds the emitter with the
forwarder's choices and owns its HTTP client:

- success: the events are reported delivered;
- retry (and network errors, timeouts): retried after a capped exponential backoff with full
  jitter, or ``Retry-After``, per the core's :class:`RetryPolicy`;
- split (413): the batch is halved; a single event still refused fails as ``oversize``, and so
  does an event that alone exceeds ``batch_max_bytes`` (without a request);
- reject: bisected (``bisect_rejects``); single events rejected fail as
  ``non_retryable_status``;
- setup (and TLS/DNS errors): retried forever every ``setup_backoff_s``, never an event's
  failure; :attr:`setup_failing` stays true until the collector answers otherwise.

The forwarder records the span, the metrics and the log lines of each request itself (from the
listener), so the core's own instruments are given no-op providers and no logs here: one span,
one metric series and one log line per request or give-up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from opentelemetry.metrics import NoOpMeter
from opentelemetry.trace import NoOpTracer
from tracking_common.emitter import (
    AsyncEmitter,
    EmitterClosedError,
    EmitterInstruments,
    EmitterListener,
    Http1Client,
    HttpClient,
    RetryPolicy,
    StatusTable,
)
from tracking_common.emitter.payload import POST_PATH, EncodedPayload

from forwarder_service.ports import RecordTag

__all__ = ["COLLECTOR_PATH", "HttpSink"]

COLLECTOR_PATH: Final = POST_PATH


class HttpSink:
    """Batches events and sends them to the collector (see the module docstring)."""

    def __init__(
        self,
        *,
        collector_url: str,
        listener: EmitterListener,
        table: StatusTable | None = None,
        batch_max_events: int = 1000,
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
        # The core's own HTTP/1.1 client: a request costs a fraction of aiohttp's, with the
        # same TransportError kinds (see docs/emitter.md), and the forwarder needs nothing
        # else of aiohttp's (no proxies, redirects or cookies).
        self._client: HttpClient = client or Http1Client(
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
            retry=retry or RetryPolicy.forever(),
            status_table=table or StatusTable.forwarder(),
            bisect_rejects=bisect_rejects,
            setup_backoff_s=setup_backoff_s,
            on_oversize="fail",
            listener=listener,
            instruments=EmitterInstruments(
                meter=NoOpMeter("forwarder_service"), tracer=NoOpTracer(), logs=False
            ),
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
