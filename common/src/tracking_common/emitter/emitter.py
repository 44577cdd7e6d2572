"""The emitter: takes tracker-protocol payloads, batches them, and delivers them over HTTP.

Contract:

- ``add`` never waits and never drops: an event is taken (and its fate reported later) or the
  call raises :class:`BufferFullError` (at ``buffer_capacity`` events or ``capacity_bytes``),
  :class:`EventTooLargeError` (alone it would make a request over ``byte_limit``; with
  ``on_oversize="fail"`` it is taken and fails as ``oversize`` instead) or
  :class:`EmitterClosedError`.
- A batch is cut at ``batch_size`` events, before an event would push the body past
  ``byte_limit`` (exact bytes, envelope and ``stm`` included), ``flush_interval_s`` after its
  first event, and on ``flush``. Up to ``max_in_flight`` requests run at once; a sender keeps
  its batch through retries and splits, so retries go ahead of newer batches.
- Each answer is classified by the :class:`StatusTable` (see ``status``): success, retry
  (backoff per the :class:`RetryPolicy`, ``Retry-After`` honoured), split (413: bisect; one
  event still too large fails as ``oversize``), reject (bisected when ``bisect_rejects``),
  fail, or setup (retried every ``setup_backoff_s`` forever; :attr:`setup_failing`).
- ``stm`` is set on every attempt. Every event is settled exactly once: delivered, failed
  for good, or abandoned by :meth:`close`. Duplicates are possible (a request that timed out
  may have been accepted); the collector's consumers deduplicate on ``eid``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, Final, Literal, Protocol

from opentelemetry import trace

from tracking_common.emitter.batching import Accumulator, Batch, Cut
from tracking_common.emitter.errors import (
    BufferFullError,
    EmitterClosedError,
    EventTooLargeError,
    TransportError,
)
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
    ResultGroup,
)
from tracking_common.emitter.payload import (
    ENVELOPE_BYTES,
    GET_PATH,
    POST_PATH,
    PendingEvent,
    encode_event,
    get_query,
    post_body,
)
from tracking_common.emitter.ports import Clock, EventStore, HttpClient, HttpResponse, Sleep
from tracking_common.emitter.retry import RetryPolicy, parse_retry_after
from tracking_common.emitter.status import StatusClass, StatusTable
from tracking_common.emitter.store import InMemoryEventStore

__all__ = ["AsyncEmitter", "Emitter", "EmitterState"]

logger = logging.getLogger(__name__)

_POST_HEADERS: Final = {"Content-Type": "application/json; charset=utf-8"}
_RETRYING: Final = frozenset({StatusClass.RETRY, StatusClass.SETUP})


class Emitter(Protocol):
    """What a :class:`~tracking_common.emitter.tracker.Tracker` sends events through."""

    def add(self, payload: Mapping[str, str], *, tag: Any = None) -> None:
        """Take one event without waiting (raises BufferFullError when full)."""
        ...

    def flush_nowait(self) -> None:
        """Send what is buffered now, without waiting."""
        ...

    async def flush(self) -> None:
        """Send what is buffered now and wait until those events are settled."""
        ...

    async def close(self, timeout_s: float | None = None) -> None:
        """Flush (bounded by ``timeout_s``), stop, report what is left as abandoned."""
        ...


class EmitterState(Enum):
    """Lifecycle: NEW until the first event or ``start``; CLOSED refuses everything."""

    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


class AsyncEmitter:
    """The asyncio emitter core (see the module docstring for the contract)."""

    def __init__(
        self,
        collector_url: str,
        *,
        method: Literal["post", "get"] = "post",
        path: str | None = None,
        batch_size: int = 50,
        byte_limit: int | None = 900_000,
        flush_interval_s: float | None = 1.0,
        max_in_flight: int = 4,
        buffer_capacity: int = 10_000,
        capacity_bytes: int | None = None,
        retry: RetryPolicy | None = None,
        status_table: StatusTable | None = None,
        custom_retry_codes: Mapping[int, bool] | None = None,
        bisect_rejects: bool = True,
        setup_backoff_s: float = 30.0,
        on_oversize: Literal["raise", "fail"] = "raise",
        on_success: OnSuccess | None = None,
        on_failure: OnFailure | None = None,
        listener: EmitterListener | None = None,
        store: EventStore | None = None,
        client: HttpClient | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        instruments: EmitterInstruments | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if status_table is not None and custom_retry_codes:
            raise ValueError("give custom_retry_codes or status_table, not both")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._get = method == "get"
        if self._get:
            batch_size = 1
        base = collector_url.rstrip("/")
        self._url = base + (path or (GET_PATH if self._get else POST_PATH))
        self._store = store or InMemoryEventStore(
            batch_size=batch_size, capacity=max(buffer_capacity, batch_size)
        )
        self._capacity = buffer_capacity if store is None else store.capacity
        self._capacity_bytes = capacity_bytes
        self._byte_limit = byte_limit
        self._acc = Accumulator(
            self._store,
            batch_size=1 if self._get else self._store.batch_size,
            byte_limit=byte_limit,
            envelope_bytes=0 if self._get else ENVELOPE_BYTES,
            on_ready=self._wake,
        )
        self._flush_interval_s = flush_interval_s
        self._max_in_flight = max_in_flight
        self._retry = retry or RetryPolicy()
        self._table = status_table or StatusTable.tracker(custom_retry_codes)
        self._bisect = bisect_rejects
        self._setup_backoff_s = setup_backoff_s
        self._raise_oversize = on_oversize == "raise"
        self._on_success = on_success
        self._on_failure = on_failure
        self._listener = listener
        self._owns_client = client is None
        self._client: HttpClient = client or AiohttpClient(
            pool_size=max_in_flight,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )
        self._instruments = instruments or EmitterInstruments()
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._state = EmitterState.NEW
        self._pending_events = 0
        self._pending_bytes = 0
        self._waiting = 0  # events with a future or group attached
        self._setup_failing = False
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._room = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._active: list[list[Batch]] = []  # each sender's batch and its pending halves
        self._timer: asyncio.TimerHandle | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> EmitterState:
        """The lifecycle state."""
        return self._state

    @property
    def setup_failing(self) -> bool:
        """True while the collector answers with set-up failures."""
        return self._setup_failing

    @property
    def pending(self) -> tuple[int, int]:
        """Events and request bytes held: buffered, waiting for a sender, or in flight."""
        return self._pending_events, self._pending_bytes

    @property
    def url(self) -> str:
        """Where requests go."""
        return self._url

    # -- taking events ---------------------------------------------------------------------

    def add(self, payload: Mapping[str, str], *, tag: Any = None) -> None:
        """Take one event (see the module docstring for what is raised)."""
        self._take(payload, tag)

    def add_awaitable(
        self, payload: Mapping[str, str], *, tag: Any = None
    ) -> asyncio.Future[EventResult]:
        """Take one event; the future resolves with its fate."""
        event = self._take(payload, tag)
        future: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        event.waiter = future
        self._waiting += 1
        return future

    def add_many(
        self, payloads: Sequence[Mapping[str, str]], *, tags: Sequence[Any] | None = None
    ) -> asyncio.Future[BatchResult]:
        """Take all of ``payloads`` or none (BufferFullError) and send them now.

        The future resolves once every one of them is settled.
        """
        self._check_open()
        if tags is not None and len(tags) != len(payloads):
            raise ValueError("tags must match payloads one to one")
        encoded = [self._encode(payload) for payload in payloads]
        self._check_room(len(encoded), sum(size for _, size in encoded))
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        group = ResultGroup(len(encoded), future)
        if not encoded:
            future.set_result(BatchResult((), ()))
        for index, (data, size) in enumerate(encoded):
            event = PendingEvent(data, size, None if tags is None else tags[index])
            event.group = group
            self._waiting += 1
            self._accept(event)
        self._cut()
        return future

    async def wait_for_room(self, events: int = 1) -> None:
        """Wait until ``events`` more events fit in the buffer (backpressure for producers)."""
        while self._pending_events + events > self._capacity:
            self._room.clear()
            await self._room.wait()

    def _check_open(self) -> None:
        if self._state in (EmitterState.CLOSING, EmitterState.CLOSED):
            raise EmitterClosedError("the emitter is closed")

    def _encode(self, payload: Mapping[str, str]) -> tuple[bytes, int]:
        data, size = encode_event(payload, get=self._get)
        if self._raise_oversize and not self._acc.fits(size):
            raise EventTooLargeError(size + self._acc_envelope(), self._byte_limit or 0)
        return data, size

    def _acc_envelope(self) -> int:
        return 0 if self._get else ENVELOPE_BYTES

    def _check_room(self, events: int, size: int) -> None:
        if self._pending_events + events > self._capacity or (
            self._capacity_bytes is not None and self._pending_bytes + size > self._capacity_bytes
        ):
            raise BufferFullError(
                f"emitter holds {self._pending_events} events ({self._pending_bytes} bytes)",
                pending_events=self._pending_events,
                pending_bytes=self._pending_bytes,
            )

    def _take(self, payload: Mapping[str, str], tag: Any) -> PendingEvent:
        self._check_open()
        data, size = self._encode(payload)
        self._check_room(1, size)
        event = PendingEvent(data, size, tag)
        self._accept(event)
        return event

    def _accept(self, event: PendingEvent) -> None:
        if self._state is EmitterState.NEW:
            self._start_workers()
        if not self._acc.fits(event.size):
            self._pending_events += 1
            self._pending_bytes += event.size
            cut = Cut(1)
            self._acc.cuts[cut] = None
            batch = Batch([event], event.size, cut)
            # Reported on the next loop turn, so the caller's own bookkeeping comes first.
            asyncio.get_running_loop().call_soon(self._refuse_oversize, batch)
            return
        self._acc.add(event)
        self._pending_events += 1
        self._pending_bytes += event.size
        if self._acc.open_count and self._timer is None and self._flush_interval_s is not None:
            self._timer = asyncio.get_running_loop().call_later(
                self._flush_interval_s, self.flush_nowait
            )

    def discard(self, predicate: Callable[[Any], bool]) -> int:
        """Drop events not yet in flight whose tag matches; return how many.

        Open events are cut first. Dropped events are cleaned up as not delivered and are not
        reported to callbacks or listeners.
        """
        self._cut()
        dropped = 0
        kept = []
        for batch in self._acc.ready:
            gone = [event for event in batch.events if predicate(event.tag)]
            if gone:
                dropped += len(gone)
                batch.events = [event for event in batch.events if not predicate(event.tag)]
                size = sum(event.size for event in gone)
                batch.size -= size
                self._pending_events -= len(gone)
                self._pending_bytes -= size
                self._store.cleanup(gone, delivered=False)
                self._cut_progress(batch.cut, len(gone), delivered=0)
            if batch.events:
                kept.append(batch)
        self._acc.ready.clear()
        self._acc.ready.extend(kept)
        return dropped

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the senders; events a persistent store already holds are sent first."""
        if self._state is EmitterState.NEW:
            self._start_workers()

    def _start_workers(self) -> None:
        self._state = EmitterState.RUNNING
        restored = self._acc.restore()
        self._pending_events += restored
        self._workers = [
            asyncio.create_task(self._work(), name=f"emitter-sender-{n}")
            for n in range(self._max_in_flight)
        ]
        if restored:
            self._cut()

    def flush_nowait(self) -> None:
        """Cut the open batch so it is sent now."""
        self._cut()

    async def flush(self) -> None:
        """Send what is buffered now and wait until every event taken so far is settled."""
        self._cut()
        cuts = list(self._acc.cuts)
        if not cuts:
            return
        loop = asyncio.get_running_loop()
        for cut in cuts:
            if cut.remaining > 0:
                if cut.done is None:
                    cut.done = loop.create_future()
                await asyncio.shield(cut.done)

    async def close(self, timeout_s: float | None = None) -> None:
        """Flush for up to ``timeout_s``, stop, and report leftovers as abandoned. Idempotent."""
        if self._state in (EmitterState.CLOSING, EmitterState.CLOSED):
            await self._closed.wait()
            return
        was_running = self._state is EmitterState.RUNNING
        self._state = EmitterState.CLOSING
        try:
            if was_running:
                async with asyncio.timeout(timeout_s):
                    await self.flush()
        except TimeoutError:
            pass
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cut()
        leftovers = [*self._acc.ready, *(batch for stack in self._active for batch in stack)]
        self._acc.ready.clear()
        self._active.clear()
        for batch in leftovers:
            self._fail(batch, FailureReason.ABANDONED, message="the emitter was closed")
        if self._owns_client:
            await self._client.close()
        self._state = EmitterState.CLOSED
        self._closed.set()

    async def __aenter__(self) -> AsyncEmitter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- batching --------------------------------------------------------------------------

    def _cut(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        made = self._acc.cut()
        if self._acc.restored:
            for batch in made:
                for event in batch.events:
                    if not self._acc.restored:
                        break
                    self._acc.restored -= 1
                    self._pending_bytes += event.size

    def _wake(self) -> None:
        self._wakeup.set()

    # -- sending ---------------------------------------------------------------------------

    async def _work(self) -> None:
        ready = self._acc.ready
        while True:
            while not ready:
                self._wakeup.clear()
                await self._wakeup.wait()
            stack = [ready.popleft()]
            self._active.append(stack)
            try:
                while stack:
                    halves = await self._attempt(stack[-1])
                    stack.pop()
                    if halves:
                        stack.extend(reversed(halves))
            except Exception as exc:
                # A broken client or store must not silently take a sender away and leave
                # flush() waiting forever: the batch fails, loudly, and the sender goes on.
                logger.exception("emitter sender failed; giving up on its batch")
                while stack:
                    self._fail(stack.pop(), FailureReason.RETRIES_EXHAUSTED, message=repr(exc))
            finally:
                if not stack:
                    self._active.remove(stack)

    async def _attempt(self, batch: Batch) -> tuple[Batch, Batch] | None:
        """Send ``batch`` until it is settled (None) or must be split (its halves)."""
        while True:
            verdict, status, error, retry_after = await self._send(batch)
            if verdict is not StatusClass.SETUP:
                self._setup_failing = False
            if verdict is StatusClass.SUCCESS:
                self._deliver(batch)
                return None
            now_ms = int(self._clock() * 1000)
            batch.first_failure_ms = batch.first_failure_ms or now_ms
            batch.last_failure_ms, batch.last_status = now_ms, status
            batch.last_error = error or f"collector answered {status}"
            if verdict is StatusClass.SETUP:
                self._setup_failing = True
                self._instruments.setup_failure(status, batch.last_error, _batch_id(batch))
                if self._listener is not None:
                    self._listener.setup_failure(status, batch.last_error)
                await self._sleep(self._setup_backoff_s)
                continue
            splits = verdict is StatusClass.SPLIT or (
                verdict is StatusClass.REJECT and self._bisect
            )
            if splits and len(batch.events) > 1:
                return batch.halves()
            if verdict is StatusClass.SPLIT:
                self._fail(batch, FailureReason.OVERSIZE)
                return None
            if verdict in (StatusClass.REJECT, StatusClass.FAIL):
                self._fail(batch, FailureReason.NON_RETRYABLE_STATUS)
                return None
            batch.transient_failures += 1
            if self._retry.gives_up_after(batch.transient_failures):
                self._fail(batch, FailureReason.RETRIES_EXHAUSTED)
                return None
            await self._sleep(self._retry.after(retry_after, batch.transient_failures, self._rand))

    async def _send(self, batch: Batch) -> tuple[StatusClass, int | None, str, float | None]:
        """One attempt: the verdict, the status (None: no answer), the error, Retry-After."""
        batch.attempts += 1
        stm_ms = int(self._clock() * 1000)
        instruments = self._instruments
        start = time.time_ns()
        response: HttpResponse | None = None
        body_bytes = 0
        error = ""
        verdict = StatusClass.RETRY
        failure_class: str | None = None
        with instruments.tracer.start_as_current_span(
            "emitter GET" if self._get else "emitter POST",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "http.request.method": "GET" if self._get else "POST",
                "url.full": self._url,
                "emitter.batch.events": len(batch.events),
                "emitter.attempt": batch.attempts,
            },
        ) as span:
            try:
                if self._get:
                    query = get_query(batch.events[0], stm_ms)
                    body_bytes = len(query)
                    response = await self._client.get(self._url, query)
                else:
                    body = post_body(batch.events, stm_ms)
                    body_bytes = len(body)
                    response = await self._client.post(self._url, body, _POST_HEADERS)
            except TransportError as exc:
                error = str(exc)
                verdict = self._table.classify_transport(exc.kind)
                failure_class = "setup" if verdict is StatusClass.SETUP else exc.kind.value
                span.set_attribute("error.type", exc.kind.value)
                span.set_status(trace.StatusCode.ERROR, error)
            else:
                verdict = self._table.classify(response.status)
                span.set_attribute("http.response.status_code", response.status)
                if verdict is not StatusClass.SUCCESS:
                    failure_class = f"{response.status // 100}xx"
                    span.set_status(trace.StatusCode.ERROR, f"{verdict.value} {response.status}")
        end = time.time_ns()
        status = None if response is None else response.status
        retry_after = None
        if response is not None and verdict is StatusClass.RETRY:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock)
        will_retry = verdict in _RETRYING and not (
            verdict is StatusClass.RETRY
            and self._retry.gives_up_after(batch.transient_failures + 1)
        )
        instruments.requests.add(1, {"outcome": verdict.value if status else "network"})
        instruments.request_duration.record((end - start) / 1e9)
        instruments.batch_size.record(len(batch.events))
        if will_retry and failure_class is not None:
            instruments.retries.add(1, {"failure_class": failure_class})
        if self._listener is not None:
            self._listener.request_finished(
                RequestReport(
                    events=batch.events,
                    status=status,
                    failure_class=failure_class,
                    start_ns=start,
                    end_ns=end,
                    attempt=batch.attempts,
                    will_retry=will_retry,
                    body_bytes=body_bytes,
                )
            )
        return verdict, status, error, retry_after

    # -- settling --------------------------------------------------------------------------

    def _release(self, batch: Batch) -> None:
        self._pending_events -= len(batch.events)
        self._pending_bytes -= batch.size
        self._room.set()

    def _cut_progress(self, cut: Cut, settled: int, *, delivered: int) -> None:
        cut.remaining -= settled
        cut.sent += delivered
        if cut.remaining <= 0:
            self._acc.cuts.pop(cut, None)
            if cut.done is not None and not cut.done.done():
                cut.done.set_result(None)

    def _deliver(self, batch: Batch) -> None:
        events = batch.events
        self._release(batch)
        self._store.cleanup(events, delivered=True)
        self._instruments.events_sent.add(len(events))
        if self._waiting:
            self._resolve(events, None)
        _call(self._on_success, events)
        if self._listener is not None:
            _call(self._listener.delivered, events)
        self._cut_progress(batch.cut, len(events), delivered=len(events))

    def _fail(self, batch: Batch, reason: FailureReason, *, message: str = "") -> None:
        events = batch.events
        if not events:
            return
        failure = DeliveryFailure(
            reason=reason,
            status=batch.last_status,
            message=message or batch.last_error or reason.value,
            attempts=batch.attempts,
            first_failure_ms=batch.first_failure_ms,
            last_failure_ms=batch.last_failure_ms,
        )
        self._release(batch)
        if reason is not FailureReason.ABANDONED:
            self._store.cleanup(events, delivered=False)
        self._instruments.gave_up(len(events), failure, _batch_id(batch))
        if self._waiting:
            self._resolve(events, failure)
        if self._on_failure is not None:
            _call(self._on_failure, batch.cut.sent, events, failure)
        if self._listener is not None:
            _call(self._listener.failed, events, failure)
        self._cut_progress(batch.cut, len(events), delivered=0)

    def _refuse_oversize(self, batch: Batch) -> None:
        now_ms = int(self._clock() * 1000)
        batch.first_failure_ms = batch.last_failure_ms = now_ms
        envelope = self._acc_envelope()
        batch.last_error = (
            f"event needs a {batch.size + envelope}-byte request, "
            f"over the {self._byte_limit}-byte limit"
        )
        self._fail(batch, FailureReason.OVERSIZE)

    def _resolve(self, events: Iterable[PendingEvent], failure: DeliveryFailure | None) -> None:
        for event in events:
            if event.waiter is not None:
                self._waiting -= 1
                if not event.waiter.done():
                    event.waiter.set_result(EventResult(failure is None, failure))
                event.waiter = None
            if event.group is not None:
                self._waiting -= 1
                event.group.settle(event, failure)
                event.group = None


def _batch_id(batch: Batch) -> str | None:
    """The first event's ``eid``: a stable id for logs and spans."""
    return batch.events[0].event_id if batch.events else None


def _call(callback: Callable[..., None] | None, *args: Any) -> None:
    """Run a caller's callback; its errors are logged, never allowed to stop delivery."""
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        logger.exception("emitter callback %r raised", callback)
