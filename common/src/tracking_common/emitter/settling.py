"""Settling: every event's fate reported exactly once, and the emitter's ledger kept with it.

The :class:`Settler` owns the counts of what the emitter holds (events, request bytes, events
with a future attached) and the ``room`` signal producers wait on. A batch is settled once:
delivered (2xx) or failed for good; either way its events leave the ledger, are cleaned up in
the store (except when abandoned, so a persistent store can send them again), and reach the
futures, the callbacks and the listener. Callbacks that raise are logged, never allowed to
stop delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from tracking_common.emitter.batching import Accumulator, Batch, Cut
from tracking_common.emitter.instruments import EmitterInstruments
from tracking_common.emitter.outcomes import (
    DeliveryFailure,
    EmitterListener,
    EventResult,
    FailureReason,
    OnFailure,
    OnSuccess,
)
from tracking_common.emitter.payload import PendingEvent
from tracking_common.emitter.ports import Clock

__all__ = ["Settler", "batch_id"]

logger = logging.getLogger(__name__)


class Settler:
    """Reports batches delivered or failed and keeps the pending counts."""

    def __init__(
        self,
        acc: Accumulator,
        *,
        instruments: EmitterInstruments,
        on_success: OnSuccess | None,
        on_failure: OnFailure | None,
        listener: EmitterListener | None,
        clock: Clock,
        byte_limit: int | None,
        envelope_bytes: int,
    ) -> None:
        self._acc = acc
        self._store = acc.store
        self._instruments = instruments
        self._on_success = on_success
        self._on_failure = on_failure
        self._listener = listener
        self._clock = clock
        self._byte_limit = byte_limit
        self._envelope_bytes = envelope_bytes
        self.pending_events = 0
        self.pending_bytes = 0
        self.waiting = 0  # events with a future or group attached
        self.room = asyncio.Event()

    def hold(self, events: int, size: int) -> None:
        """Count events (and their request bytes) as held."""
        self.pending_events += events
        self.pending_bytes += size

    def release(self, batch: Batch) -> None:
        """Take a settled batch out of the counts and signal room."""
        self.pending_events -= len(batch.events)
        self.pending_bytes -= batch.size
        self.room.set()

    def progress(self, cut: Cut, settled: int, *, delivered: int) -> None:
        """Record ``settled`` events of ``cut`` as final; resolve its flush once all are."""
        cut.remaining -= settled
        cut.sent += delivered
        if cut.remaining <= 0:
            self._acc.cuts.pop(cut, None)
            if cut.done is not None and not cut.done.done():
                cut.done.set_result(None)

    def deliver(self, batch: Batch) -> None:
        """The collector accepted ``batch``."""
        events = batch.events
        self.release(batch)
        self._store.cleanup(events, delivered=True)
        self._instruments.events_sent.add(len(events))
        if self.waiting:
            self._resolve(events, None)
        call(self._on_success, events)
        if self._listener is not None:
            call(self._listener.delivered, events)
        self.progress(batch.cut, len(events), delivered=len(events))

    def fail(self, batch: Batch, reason: FailureReason, *, message: str = "") -> None:
        """Give up on ``batch`` for good (or, ``ABANDONED``, leave it to a persistent store)."""
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
        self.release(batch)
        if reason is not FailureReason.ABANDONED:
            self._store.cleanup(events, delivered=False)
        self._instruments.gave_up(len(events), failure, batch_id(batch))
        if self.waiting:
            self._resolve(events, failure)
        if self._on_failure is not None:
            call(self._on_failure, batch.cut.sent, events, failure)
        if self._listener is not None:
            call(self._listener.failed, events, failure)
        self.progress(batch.cut, len(events), delivered=0)

    def refuse_oversize(self, batch: Batch) -> None:
        """Fail an event that alone would make a request over ``byte_limit``."""
        now_ms = int(self._clock() * 1000)
        batch.first_failure_ms = batch.last_failure_ms = now_ms
        batch.last_error = (
            f"event needs a {batch.size + self._envelope_bytes}-byte request, "
            f"over the {self._byte_limit}-byte limit"
        )
        self.fail(batch, FailureReason.OVERSIZE)

    def _resolve(self, events: Iterable[PendingEvent], failure: DeliveryFailure | None) -> None:
        for event in events:
            if event.waiter is not None:
                self.waiting -= 1
                if not event.waiter.done():
                    event.waiter.set_result(EventResult(failure is None, failure))
                event.waiter = None
            if event.group is not None:
                self.waiting -= 1
                event.group.settle(event, failure)
                event.group = None


def batch_id(batch: Batch) -> str | None:
    """The first event's ``eid``: a stable id for logs and spans."""
    return batch.events[0].event_id if batch.events else None


def call(callback: Callable[..., None] | None, *args: Any) -> None:
    """Run a caller's callback; its errors are logged, never allowed to stop delivery."""
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        logger.exception("emitter callback %r raised", callback)
