"""The emitter: takes tracker-protocol payloads, batches them, and delivers them over HTTP.

It wires the pure :class:`Accumulator` (``batching``), the :class:`Sender` tasks (``sender``)
and the :class:`Settler` (``settling``) together; this module is intake and lifecycle.

Contract:

- ``add_json`` takes one payload already encoded as a JSON object and is otherwise ``add``;
  :meth:`AsyncEmitter.intake` hands out the cheapest way in, for events written as their
  JSON object less the opening brace (the tracker's fast path; see ``staging``).
- ``add_encoded`` takes a slice of payloads already encoded as JSON objects (the forwarder's
  intake: one call per slice of records, nothing parsed or encoded again): the longest prefix
  that fits the buffer is taken, and the count returned; the caller keeps the rest.
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
import operator
import random
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import Enum
from itertools import accumulate
from typing import Any, Literal

import orjson

from tracking_common.emitter.batching import Accumulator, Batch, Cut
from tracking_common.emitter.errors import (
    BufferFullError,
    EmitterClosedError,
    EventTooLargeError,
)
from tracking_common.emitter.http1_client import Http1Client
from tracking_common.emitter.instruments import EmitterInstruments
from tracking_common.emitter.outcomes import (
    BatchResult,
    EmitterListener,
    EventResult,
    FailureReason,
    OnFailure,
    OnSuccess,
    ResultGroup,
)
from tracking_common.emitter.payload import (
    ENVELOPE_BYTES,
    GET_PATH,
    POST_PATH,
    STM_BYTES,
    EncodedPayload,
    PendingEvent,
    encode_event,
)
from tracking_common.emitter.ports import (
    Clock,
    Emitter,
    EventIntake,
    EventStore,
    HttpClient,
    Sleep,
)
from tracking_common.emitter.retry import RetryPolicy
from tracking_common.emitter.sender import Sender
from tracking_common.emitter.settling import Settler
from tracking_common.emitter.staging import UNBRACED_EXTRA_BYTES, StagedIntake
from tracking_common.emitter.status import StatusTable
from tracking_common.emitter.store import InMemoryEventStore

__all__ = ["AsyncEmitter", "Emitter", "EmitterState"]

# An encoded payload less its opening brace, sliced in C (the form events are held in).
_WITHOUT_BRACE = operator.itemgetter(slice(1, None))
# The intake's byte budget when neither byte_limit nor capacity_bytes bounds it.
_NO_BYTE_LIMIT = 2**62


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
        # ``is None``, not ``or``: an empty store has len() 0 and would be replaced.
        if store is None:
            store = InMemoryEventStore(
                batch_size=batch_size, capacity=max(buffer_capacity, batch_size)
            )
            self._capacity = buffer_capacity
        else:
            self._capacity = store.capacity
        self._store = store
        self._capacity_bytes = capacity_bytes
        self._byte_limit = byte_limit
        self._envelope = 0 if self._get else ENVELOPE_BYTES
        self._acc = Accumulator(
            self._store,
            batch_size=1 if self._get else self._store.batch_size,
            byte_limit=byte_limit,
            envelope_bytes=self._envelope,
            on_ready=self._wake,
        )
        self._flush_interval_s = flush_interval_s
        self._max_in_flight = max_in_flight
        self._raise_oversize = on_oversize == "raise"
        self._owns_client = client is None
        self._client: HttpClient = (
            client
            if client is not None
            else Http1Client(
                pool_size=max_in_flight,
                connect_timeout_s=connect_timeout_s,
                read_timeout_s=read_timeout_s,
            )
        )
        instruments = instruments or EmitterInstruments()
        self._settler = Settler(
            self._acc,
            instruments=instruments,
            on_success=on_success,
            on_failure=on_failure,
            listener=listener,
            clock=clock,
            byte_limit=byte_limit,
            envelope_bytes=self._envelope,
        )
        self._sender = Sender(
            self._acc.ready,
            self._settler,
            client=self._client,
            url=self._url,
            get=self._get,
            retry=retry or RetryPolicy(),
            table=status_table or StatusTable.tracker(custom_retry_codes),
            bisect_rejects=bisect_rejects,
            setup_backoff_s=setup_backoff_s,
            instruments=instruments,
            listener=listener,
            sleep=sleep,
            clock=clock,
            rand=rand,
        )
        # A run of events waits in the intake until it is committed, outside the store: only
        # with the in-memory store, so a persistent one holds each event from its taking.
        self._staging = type(store) is InMemoryEventStore and not self._get
        self._intake = StagedIntake(self._acc, self._settler, slow=self._take_unbraced)
        self._state = EmitterState.NEW
        self._closed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._room_now: asyncio.Future[None] | None = None  # finished, made on the loop at start

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> EmitterState:
        """The lifecycle state."""
        return self._state

    @property
    def setup_failing(self) -> bool:
        """True while the collector answers with set-up failures."""
        return self._sender.setup_failing

    @property
    def pending(self) -> tuple[int, int]:
        """Events and request bytes held: buffered, waiting for a sender, or in flight."""
        staged_events, staged_bytes = self._intake.held()
        return (
            self._settler.pending_events + staged_events,
            self._settler.pending_bytes + staged_bytes,
        )

    @property
    def url(self) -> str:
        """Where requests go."""
        return self._url

    # -- taking events ---------------------------------------------------------------------

    def add(self, payload: Mapping[str, str], *, tag: Any = None) -> None:
        """Take one event (see the module docstring for what is raised)."""
        self._take(payload, tag)

    def add_json(self, data: bytes, *, tag: Any = None) -> None:
        """Take one event already encoded: what ``add`` takes, as a JSON object's bytes.

        The bytes are sent as they are: one flat object of string values, without ``stm``
        (``Tracker`` writes them so). Raises as ``add`` does.
        """
        if tag is None:
            self._intake.take(data[1:])
        else:
            self._take_json(data, len(data) + STM_BYTES, tag)

    def intake(self) -> EventIntake:
        """The cheapest way in, for a producer that writes events less their opening brace.

        The callable takes what ``add_json`` takes without its first byte (``{``) and without
        a tag, and raises as ``add`` does. The first event of each run is checked as ``add``
        checks it; the rest of the run, up to the open batch's end or the buffer's room, is
        staged and taken in one step (see ``staging``). ``Tracker`` uses it.
        """
        return self._intake.take

    def _take_unbraced(self, data: bytes) -> None:
        """The intake's way for an event its open run does not cover: ``add``'s checks, then
        the next run opened."""
        size = len(data) + UNBRACED_EXTRA_BYTES
        if not self._checked_unbraced(data, size, None):
            return
        acc, settler = self._acc, self._settler
        room = acc.room_left()
        if not self._staging or (room is not None and size > room):
            self._accept(PendingEvent(data, size))
            return
        # It fits the open batch: it opens a run, with the room the batch and buffer have.
        if self._state is EmitterState.NEW:
            self._start_workers()
        if self._capacity_bytes is not None:
            held = self._capacity_bytes - settler.pending_bytes
            room = held if room is None else min(room, held)
        self._intake.open(
            min(acc.batch_size - acc.open_count, self._capacity - settler.pending_events),
            _NO_BYTE_LIMIT if room is None else room,
            data,
        )
        self._arm_timer()

    def _take_json(self, data: bytes, size: int, tag: Any) -> None:
        """``add_json`` with a tag: ``add``'s checks, the bytes kept as they are."""
        unbraced = data[1:]
        if self._checked_unbraced(unbraced, size, tag):
            self._accept(PendingEvent(unbraced, size, tag))

    def _checked_unbraced(self, data: bytes, size: int, tag: Any) -> bool:
        """``add``'s checks for an event less its opening brace, of ``size`` request bytes,
        after the staged run is handed over; False when a GET emitter took it as a dict."""
        self._intake.commit()
        if self._get:
            self._take(orjson.loads(b"{" + data), tag)
            return False
        self._check_open()
        if self._raise_oversize and not self._acc.fits(size):
            raise EventTooLargeError(size + self._envelope, self._byte_limit or 0)
        self._check_room(1, size)
        return True

    def add_awaitable(
        self, payload: Mapping[str, str], *, tag: Any = None
    ) -> asyncio.Future[EventResult]:
        """Take one event; the future resolves with its fate."""
        event = self._take(payload, tag)
        future: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        event.waiter = future
        self._settler.waiting += 1
        return future

    def add_many(
        self, payloads: Sequence[Mapping[str, str]], *, tags: Sequence[Any] | None = None
    ) -> asyncio.Future[BatchResult]:
        """Take all of ``payloads`` or none (BufferFullError) and send them now.

        The future resolves once every one of them is settled.
        """
        self._intake.commit()
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
            self._settler.waiting += 1
            self._accept(event)
        self._cut()
        return future

    def add_encoded(self, payloads: Sequence[EncodedPayload], tags: Sequence[Any]) -> int:
        """Take the longest prefix of ``payloads`` that fits; return how many were taken.

        Each payload is one tracker-protocol event as a JSON object's bytes, without ``stm``
        and not empty (the caller checked it: nothing is parsed here); ``tags`` match them one
        to one. An event too large for a request on its own is taken and fails as
        ``oversize``. POST only. Raises EmitterClosedError once closed.
        """
        self._intake.commit()
        self._check_open()
        if self._get:
            raise ValueError("add_encoded needs the POST method")
        if self._state is EmitterState.NEW:
            self._start_workers()
        settler = self._settler
        count = max(0, min(len(payloads), self._capacity - settler.pending_events))
        sizes = [len(payload) + STM_BYTES for payload in payloads[:count]]
        if self._capacity_bytes is not None:
            room_bytes = self._capacity_bytes - settler.pending_bytes
            if sum(sizes) > room_bytes:
                count = bisect_right(list(accumulate(sizes)), room_bytes)
                del sizes[count:]
        events = list(map(PendingEvent, map(_WITHOUT_BRACE, payloads[:count]), sizes, tags))
        acc = self._acc
        if sizes and not acc.fits(max(sizes)):
            for event in events:
                if acc.fits(event.size):
                    acc.add(event)
                else:
                    self._refuse_oversize(event)
        else:
            acc.extend(events)
        taken, size_taken = len(events), sum(sizes)
        settler.hold(taken, size_taken)
        self._arm_timer()
        return taken

    def wait_for_room(self, events: int = 1) -> Awaitable[None]:
        """Wait until ``events`` more events fit in the buffer (backpressure for producers).

        An awaitable, not a coroutine: when there is room already it is a finished future,
        so a producer that awaits it before each event makes no coroutine per event.
        """
        if (
            self._room_now is not None
            and self._settler.pending_events + len(self._intake.staged) + events <= self._capacity
        ):
            return self._room_now
        return self._wait_for_room(events)

    async def _wait_for_room(self, events: int) -> None:
        settler, staged = self._settler, self._intake.staged
        while settler.pending_events + len(staged) + events > self._capacity:
            settler.room.clear()
            await settler.room.wait()

    def _check_open(self) -> None:
        if self._state in (EmitterState.CLOSING, EmitterState.CLOSED):
            raise EmitterClosedError("the emitter is closed")

    def _encode(self, payload: Mapping[str, str]) -> tuple[bytes, int]:
        data, size = encode_event(payload, get=self._get)
        if self._raise_oversize and not self._acc.fits(size):
            raise EventTooLargeError(size + self._envelope, self._byte_limit or 0)
        return data, size

    def _check_room(self, events: int, size: int) -> None:
        held_events, held_bytes = self._settler.pending_events, self._settler.pending_bytes
        if held_events + events > self._capacity or (
            self._capacity_bytes is not None and held_bytes + size > self._capacity_bytes
        ):
            raise BufferFullError(
                f"emitter holds {held_events} events ({held_bytes} bytes)",
                pending_events=held_events,
                pending_bytes=held_bytes,
            )

    def _take(self, payload: Mapping[str, str], tag: Any) -> PendingEvent:
        self._intake.commit()
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
            self._settler.hold(1, event.size)
            self._refuse_oversize(event)
            return
        self._acc.add(event)
        self._settler.hold(1, event.size)
        self._arm_timer()

    def _arm_timer(self) -> None:
        """Cut the open batch ``flush_interval_s`` after its first event."""
        if (
            self._timer is None
            and (self._acc.open_count or self._intake.staged)
            and self._flush_interval_s is not None
        ):
            # The loop kept at start: get_running_loop() is a getpid() system call on 3.11.
            loop = self._loop or asyncio.get_running_loop()
            self._timer = loop.call_later(self._flush_interval_s, self.flush_nowait)

    def _refuse_oversize(self, event: PendingEvent) -> None:
        cut = Cut(1)
        self._acc.cuts[cut] = None
        batch = Batch([event], event.size, cut)
        # Reported on the next loop turn, so the caller's own bookkeeping comes first.
        asyncio.get_running_loop().call_soon(self._settler.refuse_oversize, batch)

    def discard(self, predicate: Callable[[Any], bool]) -> int:
        """Drop events not yet in flight whose tag matches; return how many.

        Open events are cut first. Dropped events are cleaned up as not delivered and are not
        reported to callbacks or listeners.
        """
        self._cut()
        dropped = 0
        kept = []
        settler = self._settler
        for batch in self._acc.ready:
            gone = [event for event in batch.events if predicate(event.tag)]
            if gone:
                dropped += len(gone)
                batch.events = [event for event in batch.events if not predicate(event.tag)]
                size = sum(event.size for event in gone)
                batch.size -= size
                settler.hold(-len(gone), -size)
                self._store.cleanup(gone, delivered=False)
                settler.progress(batch.cut, len(gone), delivered=0)
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
        self._loop = asyncio.get_running_loop()
        self._room_now = self._loop.create_future()
        self._room_now.set_result(None)
        self._state = EmitterState.RUNNING
        restored = self._acc.restore()
        self._settler.hold(restored, 0)
        self._sender.start(self._max_in_flight)
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
        self._intake.commit()
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
        in_flight = await self._sender.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cut()
        leftovers = [*self._acc.ready, *in_flight]
        self._acc.ready.clear()
        for batch in leftovers:
            self._settler.fail(batch, FailureReason.ABANDONED, message="the emitter was closed")
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
        self._intake.commit()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        made = self._acc.cut()
        if self._acc.restored:
            # Restored events enter the byte count as they are cut (their sizes are known).
            for batch in made:
                for event in batch.events:
                    if not self._acc.restored:
                        break
                    self._acc.restored -= 1
                    self._settler.pending_bytes += event.size

    def _wake(self) -> None:
        self._sender.wake()
