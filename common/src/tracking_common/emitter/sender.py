"""The sender loop: the I/O half of the emitter (post, classify, retry, split).

``max_in_flight`` sender tasks each take the oldest ready batch and keep it until it is
settled, so retries and the halves of a split go ahead of newer batches. Each attempt sets
``stm`` afresh, gets one CLIENT span, and is classified by the :class:`StatusTable`:
success settles; retry sleeps per the :class:`RetryPolicy` (``Retry-After`` honoured) until
the budget runs out; split (413) and reject (with ``bisect_rejects``) halve the batch, a
single event failing for good; fail gives up; setup retries every ``setup_backoff_s``
forever and raises :attr:`Sender.setup_failing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from opentelemetry import trace

from tracking_common.emitter.batching import Batch
from tracking_common.emitter.errors import TransportError
from tracking_common.emitter.instruments import EmitterInstruments
from tracking_common.emitter.outcomes import EmitterListener, FailureReason, RequestReport
from tracking_common.emitter.payload import get_query, post_body
from tracking_common.emitter.ports import Clock, HttpClient, HttpResponse, Sleep
from tracking_common.emitter.retry import RetryPolicy, parse_retry_after
from tracking_common.emitter.settling import Settler, batch_id
from tracking_common.emitter.status import StatusClass, StatusTable

__all__ = ["Sender"]

logger = logging.getLogger(__name__)

_POST_HEADERS: Final = {"Content-Type": "application/json; charset=utf-8"}
_RETRYING: Final = frozenset({StatusClass.RETRY, StatusClass.SETUP})


class Sender:
    """Runs the sender tasks over ``ready`` batches; results go to the :class:`Settler`."""

    def __init__(
        self,
        ready: deque[Batch],
        settler: Settler,
        *,
        client: HttpClient,
        url: str,
        get: bool,
        retry: RetryPolicy,
        table: StatusTable,
        bisect_rejects: bool,
        setup_backoff_s: float,
        instruments: EmitterInstruments,
        listener: EmitterListener | None,
        sleep: Sleep,
        clock: Clock,
        rand: Callable[[], float],
    ) -> None:
        self._ready = ready
        self._settler = settler
        self._client = client
        self._url = url
        self._get = get
        self._retry = retry
        self._table = table
        self._bisect = bisect_rejects
        self._setup_backoff_s = setup_backoff_s
        self._instruments = instruments
        self._listener = listener
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._idle: deque[asyncio.Future[None]] = deque()  # one waiter per idle sender
        self._workers: list[asyncio.Task[None]] = []
        self._active: list[list[Batch]] = []  # each sender's batch and its pending halves
        self.setup_failing = False

    def start(self, count: int) -> None:
        """Start ``count`` sender tasks."""
        self._workers = [
            asyncio.create_task(self._work(), name=f"emitter-sender-{n}") for n in range(count)
        ]

    def wake(self) -> None:
        """Wake an idle sender for each ready batch.

        One each, not all: an ``asyncio.Event`` woke every idle sender for every batch, and
        all but one went back to sleep (3 wasted task steps a batch with 4 senders).
        """
        idle, waiting = self._idle, len(self._ready)
        while idle and waiting:
            waiter = idle.popleft()
            if not waiter.done():  # a cancelled sender's
                waiter.set_result(None)
                waiting -= 1

    async def stop(self) -> list[Batch]:
        """Cancel the senders; return the batches they held, unsettled."""
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._idle.clear()
        held = [batch for stack in self._active for batch in stack]
        self._active.clear()
        return held

    async def _work(self) -> None:
        ready = self._ready
        loop = asyncio.get_running_loop()
        while True:
            while not ready:
                waiter = loop.create_future()
                self._idle.append(waiter)
                await waiter
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
                    self._settler.fail(
                        stack.pop(), FailureReason.RETRIES_EXHAUSTED, message=repr(exc)
                    )
            finally:
                if not stack:
                    self._active.remove(stack)

    async def _attempt(self, batch: Batch) -> tuple[Batch, Batch] | None:
        """Send ``batch`` until it is settled (None) or must be split (its halves)."""
        settler = self._settler
        while True:
            verdict, status, error, retry_after = await self._send(batch)
            if verdict is not StatusClass.SETUP:
                self.setup_failing = False
            if verdict is StatusClass.SUCCESS:
                settler.deliver(batch)
                return None
            now_ms = int(self._clock() * 1000)
            batch.first_failure_ms = batch.first_failure_ms or now_ms
            batch.last_failure_ms, batch.last_status = now_ms, status
            batch.last_error = error or f"collector answered {status}"
            if verdict is StatusClass.SETUP:
                self.setup_failing = True
                self._instruments.setup_failure(status, batch.last_error, batch_id(batch))
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
                settler.fail(batch, FailureReason.OVERSIZE)
                return None
            if verdict in (StatusClass.REJECT, StatusClass.FAIL):
                settler.fail(batch, FailureReason.NON_RETRYABLE_STATUS)
                return None
            batch.transient_failures += 1
            if self._retry.gives_up_after(batch.transient_failures):
                settler.fail(batch, FailureReason.RETRIES_EXHAUSTED)
                return None
            await self._sleep(self._retry.after(retry_after, batch.transient_failures, self._rand))

    async def _request(
        self, batch: Batch, stm_ms: int, span: trace.Span
    ) -> tuple[HttpResponse | None, int, str, StatusClass, str | None]:
        """The request itself: the answer, the body's bytes, the error, verdict, failure class."""
        response: HttpResponse | None = None
        body_bytes = 0
        error = ""
        failure_class: str | None = None
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
        return response, body_bytes, error, verdict, failure_class

    async def _send(self, batch: Batch) -> tuple[StatusClass, int | None, str, float | None]:
        """One attempt: the verdict, the status (None: no answer), the error, Retry-After."""
        batch.attempts += 1
        stm_ms = int(self._clock() * 1000)
        instruments = self._instruments
        start = time.time_ns()
        span = instruments.tracer.start_span(
            "emitter GET" if self._get else "emitter POST",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "http.request.method": "GET" if self._get else "POST",
                "url.full": self._url,
                "emitter.batch.events": len(batch.events),
                "emitter.attempt": batch.attempts,
            },
        )
        # A span nobody records is not made current: the context switch was most of a no-op
        # span's cost (5-8 us a request), and the clients read no context.
        current = trace.use_span(span) if span.is_recording() else contextlib.nullcontext()
        try:
            with current:
                response, body_bytes, error, verdict, failure_class = await self._request(
                    batch, stm_ms, span
                )
        finally:
            span.end()
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
