"""An :class:`~forwarder_service.ports.EventSink` that POSTs batches to a Snowplow collector.

Events are serialised once, on :meth:`HttpSink.submit`, and buffered; a batch is cut at
``batch_max_events``/``batch_max_bytes`` or after ``linger_s``, and up to ``max_in_flight``
batches are sent at once to ``<collector>/com.snowplowanalytics.snowplow/tp2`` as a
``payload_data`` body, with ``stm`` set on every attempt. Each answer is classified with the
:class:`~forwarder_service.classification.StatusTable`:

- success: the events are reported delivered;
- retry (and network errors, timeouts): the batch is retried after a capped exponential backoff
  with full jitter, or ``Retry-After`` when the collector sends one; after ``max_attempts``
  (0 = never) the events are reported RETRIES_EXHAUSTED;
- split (413): the batch is halved; a single event still refused is reported OVERSIZE;
- reject: the batch is bisected (``bisect_rejects``) so good events get through; single events
  rejected are reported NON_RETRYABLE_STATUS;
- setup (and TLS/DNS errors): retried forever every ``setup_backoff_s``, never an event's
  failure; :attr:`setup_failing` stays true until the collector answers otherwise.

Every event's fate is reported exactly once. :meth:`close` reports what is left ABANDONED.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Final

import aiohttp
import orjson

from forwarder_service.classification import StatusClass, StatusTable
from forwarder_service.ports import (
    DeliveryListener,
    FailureKind,
    RecordTag,
    RequestReport,
    SendFailure,
    SinkFullError,
)

__all__ = ["COLLECTOR_PATH", "HttpSink", "RetryPolicy"]

logger = logging.getLogger(__name__)

COLLECTOR_PATH: Final = "/com.snowplowanalytics.snowplow/tp2"
_PREFIX: Final = (
    b'{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":['
)
_ENVELOPE_BYTES: Final = len(_PREFIX) + 2
_STM_BYTES: Final = len(b',"stm":"1700000000000"')
_MAX_RETRY_AFTER_S: Final = 300.0

_Item = tuple[bytes, RecordTag]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; ``max_attempts`` 0 retries forever."""

    max_attempts: int = 0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(attempt - 1, 30))
        return float(rand()) * ceiling


@dataclass(slots=True)
class _Batch:
    items: list[_Item]
    size: int
    attempts: int = 0  # requests that carried these events (inherited by halves)
    transient_failures: int = 0  # of this batch, for the retry budget
    first_failure_ms: int = 0
    last_failure_ms: int = 0
    last_status: int | None = None
    last_error: str = ""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, _MAX_RETRY_AFTER_S))


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
    ) -> None:
        self._url = collector_url.rstrip("/") + COLLECTOR_PATH
        self._listener = listener
        self._table = table or StatusTable()
        self._max_events = batch_max_events
        self._max_bytes = batch_max_bytes
        self._linger_s = linger_s
        self._max_in_flight = max_in_flight
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s, connect=5.0)
        self._retry = retry or RetryPolicy()
        self._setup_backoff_s = setup_backoff_s
        self._bisect = bisect_rejects
        self._capacity_events = capacity_events
        self._capacity_bytes = capacity_bytes
        self._sleep = sleep
        self._rand = rand
        self._buffer: list[_Item] = []
        self._buffer_bytes = 0
        self._ready: deque[_Batch] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._events = 0  # buffered + queued + in flight
        self._bytes = 0
        self._setup_failing = False
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: set[int] = set()
        self._batches: dict[int, _Batch] = {}
        self._linger_handle: asyncio.TimerHandle | None = None
        self._closed = False

    # -- EventSink -------------------------------------------------------------------------

    @property
    def setup_failing(self) -> bool:
        """True while the collector answers with setup failures."""
        return self._setup_failing

    def backlog(self) -> tuple[int, int]:
        """Events and bytes buffered, queued or in flight."""
        return self._events, self._bytes

    def submit(self, payload: Mapping[str, str], *, tag: RecordTag) -> None:
        """Buffer one event; raise SinkFullError when at capacity."""
        if self._closed:
            raise SinkFullError("sink is closed")
        if self._events >= self._capacity_events or self._bytes >= self._capacity_bytes:
            raise SinkFullError("sink is at capacity")
        encoded = orjson.dumps(payload)
        size = len(encoded) + _STM_BYTES + 1
        self._events += 1
        self._bytes += size
        self._idle.clear()
        if size + _ENVELOPE_BYTES > self._max_bytes:
            # Never sendable: report it without a request (on the next loop turn, so the
            # caller's bookkeeping for this submit is complete first).
            batch = _Batch(items=[(encoded, tag)], size=size)
            asyncio.get_running_loop().call_soon(self._oversize_now, batch)
            return
        if self._buffer_bytes + size + _ENVELOPE_BYTES > self._max_bytes:
            self._cut()
        self._buffer.append((encoded, tag))
        self._buffer_bytes += size
        if len(self._buffer) >= self._max_events:
            self._cut()
        elif self._linger_handle is None:
            self._linger_handle = asyncio.get_running_loop().call_later(
                self._linger_s, self._linger_expired
            )

    def discard(self, predicate: Callable[[RecordTag], bool]) -> int:
        """Drop buffered and queued (not in-flight) events whose tag matches."""
        dropped = 0
        kept: list[_Item] = []
        for item in self._buffer:
            if predicate(item[1]):
                dropped += 1
                self._forget(len(item[0]) + _STM_BYTES + 1)
            else:
                kept.append(item)
        self._buffer = kept
        self._buffer_bytes = sum(len(e) + _STM_BYTES + 1 for e, _ in kept)
        for batch in self._ready:
            before = len(batch.items)
            batch.items = [item for item in batch.items if not predicate(item[1])]
            for _ in range(before - len(batch.items)):
                dropped += 1
            new_size = sum(len(e) + _STM_BYTES + 1 for e, _ in batch.items)
            self._bytes -= batch.size - new_size
            self._events -= before - len(batch.items)
            batch.size = new_size
        self._ready = deque(batch for batch in self._ready if batch.items)
        self._maybe_idle()
        return dropped

    async def start(self) -> None:
        """Open the connection pool and start the sending tasks."""
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(limit=self._max_in_flight, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        self._workers = [
            asyncio.create_task(self._work(), name=f"sink-sender-{n}")
            for n in range(self._max_in_flight)
        ]

    async def flush(self) -> None:
        """Send what is buffered now and wait until the sink holds nothing."""
        self._cut()
        await self._idle.wait()

    async def close(self, timeout_s: float) -> None:
        """Flush for up to ``timeout_s``, then stop; report leftovers ABANDONED."""
        if self._closed:
            return
        self._closed = True
        try:
            async with asyncio.timeout(timeout_s):
                await self.flush()
        except TimeoutError:
            pass
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._linger_handle is not None:
            self._linger_handle.cancel()
        leftovers = [*self._buffer]
        for batch in [*self._ready, *self._batches.values()]:
            leftovers.extend(batch.items)
        self._buffer, self._ready, self._batches = [], deque(), {}
        if leftovers:
            self._listener.failed(
                [
                    self._failure(_Batch(items=[it], size=0), it[1], FailureKind.ABANDONED)
                    for it in leftovers
                ]
            )
        self._events = self._bytes = 0
        self._idle.set()
        if self._session is not None:
            await self._session.close()

    # -- batching --------------------------------------------------------------------------

    def _linger_expired(self) -> None:
        self._linger_handle = None
        self._cut()

    def _cut(self) -> None:
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        if not self._buffer:
            return
        self._ready.append(_Batch(items=self._buffer, size=self._buffer_bytes))
        self._buffer, self._buffer_bytes = [], 0
        self._wakeup.set()

    def _forget(self, size: int, events: int = 1) -> None:
        self._events -= events
        self._bytes -= size

    def _maybe_idle(self) -> None:
        if self._events <= 0:
            self._idle.set()

    # -- sending ---------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            while not self._ready:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = self._ready.popleft()
            key = id(batch)
            self._batches[key] = batch
            try:
                await self._deliver(batch)
            finally:
                self._batches.pop(key, None)
                self._maybe_idle()

    async def _deliver(self, first: _Batch) -> None:
        stack = [first]
        while stack:
            batch = stack.pop()
            outcome = await self._attempt(batch)
            if outcome is None:
                continue  # settled
            halves = outcome
            stack.extend(reversed(halves))

    async def _attempt(self, batch: _Batch) -> list[_Batch] | None:
        """Send ``batch`` until it is settled (None) or must be split (the halves)."""
        while True:
            status, error, retry_after = await self._post(batch)
            if status is not None:
                verdict = self._table.classify(status)
            elif error.startswith("setup:"):
                verdict = StatusClass.SETUP
            else:
                verdict = StatusClass.RETRY
            if verdict is not StatusClass.SETUP:
                self._setup_failing = False
            if verdict is StatusClass.SUCCESS:
                self._settle(batch)
                self._listener.delivered([tag for _, tag in batch.items])
                return None
            now = time.time_ns() // 1_000_000
            batch.first_failure_ms = batch.first_failure_ms or now
            batch.last_failure_ms, batch.last_status, batch.last_error = now, status, error
            if verdict is StatusClass.SETUP:
                self._setup_failing = True
                self._listener.setup_failure(status, error or f"collector answered {status}")
                await self._sleep(self._setup_backoff_s)
                continue
            if verdict in (StatusClass.SPLIT, StatusClass.REJECT):
                if len(batch.items) > 1 and (verdict is StatusClass.SPLIT or self._bisect):
                    return self._halves(batch)
                kind = (
                    FailureKind.OVERSIZE
                    if verdict is StatusClass.SPLIT
                    else FailureKind.NON_RETRYABLE_STATUS
                )
                self._give_up(batch, kind)
                return None
            batch.transient_failures += 1
            retry = self._retry
            if retry.max_attempts and batch.transient_failures >= retry.max_attempts:
                self._give_up(batch, FailureKind.RETRIES_EXHAUSTED)
                return None
            delay = retry_after
            if delay is None:
                delay = retry.delay(batch.transient_failures, self._rand)
            await self._sleep(delay)

    def _halves(self, batch: _Batch) -> list[_Batch]:
        middle = len(batch.items) // 2
        halves = []
        for items in (batch.items[:middle], batch.items[middle:]):
            size = sum(len(e) + _STM_BYTES + 1 for e, _ in items)
            halves.append(
                _Batch(
                    items=items,
                    size=size,
                    attempts=batch.attempts,
                    first_failure_ms=batch.first_failure_ms,
                    last_failure_ms=batch.last_failure_ms,
                    last_status=batch.last_status,
                    last_error=batch.last_error,
                )
            )
        return halves

    async def _post(self, batch: _Batch) -> tuple[int | None, str, float | None]:
        session = self._session
        if session is None:
            raise RuntimeError("sink is not started")
        batch.attempts += 1
        stm = b',"stm":"%d"}' % (time.time_ns() // 1_000_000)
        body = _PREFIX + b",".join([encoded[:-1] + stm for encoded, _ in batch.items]) + b"]}"
        start = time.time_ns()
        status: int | None = None
        error = ""
        retry_after: float | None = None
        try:
            async with session.post(
                self._url,
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
            ) as response:
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
                await response.read()
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            error = f"setup: TLS error {exc!r}"
        except aiohttp.ClientConnectorDNSError as exc:
            error = f"setup: DNS error {exc!r}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        end = time.time_ns()
        verdict = self._table.classify(status) if status is not None else None
        failure_class = None
        if verdict is not StatusClass.SUCCESS:
            failure_class = (
                f"{status // 100}xx"
                if status is not None
                else ("setup" if error.startswith("setup:") else "network")
            )
        self._listener.request_finished(
            RequestReport(
                tags=[tag for _, tag in batch.items],
                status=status,
                failure_class=failure_class,
                start_ns=start,
                end_ns=end,
                will_retry=verdict in (None, StatusClass.RETRY, StatusClass.SETUP),
            )
        )
        return status, error, retry_after

    # -- settling --------------------------------------------------------------------------

    def _settle(self, batch: _Batch) -> None:
        self._forget(batch.size, len(batch.items))

    def _give_up(self, batch: _Batch, kind: FailureKind) -> None:
        self._settle(batch)
        self._listener.failed([self._failure(batch, tag, kind) for _, tag in batch.items])

    def _oversize_now(self, batch: _Batch) -> None:
        now = time.time_ns() // 1_000_000
        batch.first_failure_ms = batch.last_failure_ms = now
        batch.last_error = f"event of {batch.size} bytes exceeds the {self._max_bytes}-byte limit"
        self._give_up(batch, FailureKind.OVERSIZE)
        self._maybe_idle()

    @staticmethod
    def _failure(batch: _Batch, tag: RecordTag, kind: FailureKind) -> SendFailure:
        status = batch.last_status
        return SendFailure(
            tag=tag,
            kind=kind,
            status=status,
            error_class="CollectorRejected" if status is not None else "CollectorUnreachable",
            message=batch.last_error or (f"collector answered {status}" if status else kind.value),
            attempts=batch.attempts,
            first_failure_ms=batch.first_failure_ms,
            last_failure_ms=batch.last_failure_ms,
        )
