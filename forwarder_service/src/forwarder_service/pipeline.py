"""The forwarding pipeline: decode, hand to the sink, settle offsets, dead-letter failures.

Guarantee kept here: a record's offset is settled (made committable by the
:class:`~forwarder_service.offsets.OffsetTracker`) only when the collector accepted its event,
or when the dead-letter topic acknowledged it. Records that cannot be decoded or break the
contract are dead-lettered without being sent. Failures the sink gave up on (non-retryable
status, retries exhausted, oversize) are dead-lettered with the sink's account of them;
abandoned events (shutdown) are left unsettled, so they are read again after a restart.
Results for partitions no longer owned (or owned again under a newer generation) are ignored,
dead letters included: the new owner reads those records again.

If the dead-letter topic cannot be written, the pipeline records a fatal
:class:`~forwarder_service.errors.DeadLetterWriteError` and writes nothing more; the consumer
must stop. Nothing past the failed records is ever settled.

The pipeline never awaits inside :meth:`Pipeline.accept` and the listener methods do not block:
the rebalance listener can await :meth:`Pipeline.drain` while the consumer loop is parked in
``getmany`` without deadlocking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Hashable, Sequence
from functools import partial
from itertools import repeat
from operator import attrgetter
from typing import Any, Final, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NoOpTracer, Tracer
from tracking_common.emitter import DeliveryFailure, FailureReason, PendingEvent, RequestReport
from tracking_common.errors import RecordContractError
from tracking_common.record import CheckedRecord, check_record, check_records
from tracking_common.tracing import context_from_headers

from forwarder_service.dead_letter import DeadLetter, DeadLetterSink, ErrorClass
from forwarder_service.errors import DeadLetterWriteError, FatalForwarderError
from forwarder_service.metrics import ForwarderMetrics
from forwarder_service.offsets import OffsetTracker, RecordSlice
from forwarder_service.ports import EventSink, RecordLike, RecordTag

__all__ = ["Pipeline"]

_Letter = tuple[DeadLetter, RecordTag]

logger = logging.getLogger(__name__)

_MAX_SPAN_LINKS: Final = 32
# Builds RecordTag(slice, record) from a (slice, record) pair without a Python-level call.
_new_tag: Final = cast("Any", partial(tuple.__new__, RecordTag))
_VALUE: Final = attrgetter("value")
_DLQ_BATCH: Final = 500
_ERROR_CLASSES: Final = {
    FailureReason.NON_RETRYABLE_STATUS: ErrorClass.NON_RETRYABLE_STATUS,
    FailureReason.RETRIES_EXHAUSTED: ErrorClass.RETRIES_EXHAUSTED,
    FailureReason.OVERSIZE: ErrorClass.OVERSIZE,
}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _topic_partition(tp: Hashable) -> tuple[str, int]:
    """The topic and partition of ``tp`` (aiokafka's TopicPartition, a named tuple)."""
    return cast("tuple[str, int]", tp)


def _trace_of(tags: Sequence[RecordTag]) -> tuple[Context | None, list[Link]]:
    """The trace a batch continues, and links to the other records' traces.

    The parent is the first record (among the first 32) whose headers carry a valid trace
    context, so the batch's span joins the trace the API started; the other records' traces
    are linked. Records without a trace context are skipped.
    """
    parent: Context | None = None
    parent_id = None
    links = []
    for tag in tags[:_MAX_SPAN_LINKS]:
        headers = tag.record.headers
        if not headers:
            continue
        context = context_from_headers(headers)
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            continue
        if parent is None:
            parent, parent_id = context, (span_context.trace_id, span_context.span_id)
        elif (span_context.trace_id, span_context.span_id) != parent_id:
            links.append(Link(span_context))
    return parent, links


class Pipeline:
    """Moves records from the consumer to the sink and settles their offsets.

    It is the emitter core's :class:`~tracking_common.emitter.EmitterListener`: each event's
    tag is its :class:`~forwarder_service.ports.RecordTag`.
    """

    def __init__(
        self,
        *,
        tracker: OffsetTracker[Hashable],
        dead_letters: DeadLetterSink,
        metrics: ForwarderMetrics,
        tracer: Tracer | None = None,
    ) -> None:
        self._tracer = tracer or trace.get_tracer(__name__)
        # A request's span is ended at once and propagated nowhere, so a tracer that records
        # nothing (no exporter: tracking_common's context-only tracer) needs none of it.
        self._request_spans = not isinstance(self._tracer, NoOpTracer)
        self._tracker = tracker
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._sink: EventSink | None = None
        self._dlq_queue: asyncio.Queue[list[_Letter]] | None = None
        self._dlq_pending = 0  # letters queued or being written
        self._dlq_task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self._settled = asyncio.Event()  # the consumer loop's wake-up (drain uses _progress)
        self._failure: FatalForwarderError | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def bind(self, sink: EventSink) -> None:
        """Attach the sink (built with this pipeline as its listener)."""
        self._sink = sink

    @property
    def sink(self) -> EventSink:
        """The bound sink."""
        if self._sink is None:
            raise RuntimeError("pipeline has no sink bound")
        return self._sink

    async def start(self) -> None:
        """Start the dead-letter writer task."""
        if self._dlq_task is None:
            self._dlq_queue = asyncio.Queue()
            self._dlq_task = asyncio.create_task(self._write_dead_letters(), name="dlq-writer")

    async def stop(self) -> None:
        """Stop the dead-letter writer (letters not yet acknowledged stay unsettled)."""
        task, self._dlq_task = self._dlq_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def failure(self) -> FatalForwarderError | None:
        """The fatal error that stopped the pipeline, if any."""
        return self._failure

    @property
    def tracker(self) -> OffsetTracker[Hashable]:
        """The offset tracker."""
        return self._tracker

    def oldest_undelivered_age_s(self) -> float:
        """Seconds since the oldest event taken and not yet settled was accepted (0: none)."""
        oldest_ms = self._tracker.oldest_unsettled_ms()
        return 0.0 if oldest_ms is None else max(0, _now_ms() - oldest_ms) / 1000

    def backlog(self) -> tuple[int, int]:
        """Events and bytes not yet settled: in the sink plus dead letters being written."""
        events, size = self.sink.backlog()
        return events + self._dlq_pending, size

    # -- taking records --------------------------------------------------------------------

    def accept(self, tp: Hashable, records: Sequence[RecordLike]) -> int | None:
        """Take ``records`` of ``tp`` (ascending, one fetch's slice); return the index of the
        first one the sink had no room for (the caller seeks back to it), or None when all
        were taken.

        Each record is checked against the contract (payload kept as bytes); the valid ones go
        to the sink in one call, the others to the dead-letter topic. What is taken becomes
        one :class:`RecordSlice` for the offset tracker. Records of a partition not owned are
        ignored (None).
        """
        generation = self._tracker.generation(tp)
        if generation is None or not records or self._failure is not None:
            return None
        valid: Sequence[RecordLike] = records
        positions: Sequence[int] = range(len(records))  # of each valid record in ``records``
        invalid: list[tuple[int, Exception]] = []
        try:
            # The common case, every record conforms: checked as one slice, no bookkeeping.
            checked = check_records(list(map(_VALUE, records)))
        except Exception:  # which record, and why: the walk below finds out
            checked, valid, positions, invalid = self._check_each(tp, records)
        payloads = [memoryview(record.payload) for record in checked]
        first_ms = checked[0].collector_tstamp if checked else None
        piece = RecordSlice(
            tp,
            generation,
            records[0].offset,
            records[-1].offset,
            len(records),
            records[0].timestamp if first_ms is None else first_ms,
        )
        taken = len(records)
        if payloads:
            tags = list(map(_new_tag, zip(repeat(piece), valid, strict=False)))
            accepted = self.sink.add_encoded(payloads, tags)
            if accepted < len(payloads):
                taken = positions[accepted]
        stopped_at: int | None = None
        if taken < len(records):
            stopped_at = taken
            if taken == 0:
                return 0
            piece.last = records[taken - 1].offset
            piece.count = piece.remaining = taken
            invalid = [(index, exc) for index, exc in invalid if index < taken]
        self._tracker.take(piece)
        self._metrics.events_consumed.add(taken)
        if invalid:
            self._enqueue_dead_letters(
                [
                    (
                        self._invalid_letter(tp, records[index], exc),
                        RecordTag(piece, records[index]),
                    )
                    for index, exc in invalid
                ]
            )
        return stopped_at

    @staticmethod
    def _check_each(
        tp: Hashable, records: Sequence[RecordLike]
    ) -> tuple[list[CheckedRecord], list[RecordLike], list[int], list[tuple[int, Exception]]]:
        """Check records one by one: the conforming ones, their records and positions, and
        the others with what is wrong with them."""
        checked: list[CheckedRecord] = []
        valid: list[RecordLike] = []
        positions: list[int] = []
        invalid: list[tuple[int, Exception]] = []
        for index, record in enumerate(records):
            try:
                checked.append(check_record(record.value))
            except RecordContractError as exc:
                invalid.append((index, exc))
                continue
            except Exception as exc:
                # A decoder bug must not wedge the partition: raising would stop the service
                # on this record at every restart.
                logger.warning(
                    "decoder raised %s on %s@%d; dead-lettering the record",
                    type(exc).__name__,
                    tp,
                    record.offset,
                )
                invalid.append((index, exc))
                continue
            valid.append(record)
            positions.append(index)
        return checked, valid, positions, invalid

    @staticmethod
    def _invalid_letter(tp: Hashable, record: RecordLike, exc: Exception) -> DeadLetter:
        now = _now_ms()
        if isinstance(exc, RecordContractError):
            message = f"{','.join(exc.codes)}: {exc}"
        else:
            message = f"unexpected decoder error: {exc}"
        topic, partition = _topic_partition(tp)
        return DeadLetter(
            topic=topic,
            partition=partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=list(record.headers or ()),
            timestamp_ms=record.timestamp,
            error_class=ErrorClass.INVALID_RECORD,
            exception_class=type(exc).__name__,
            message=message,
            status=None,
            attempts=0,
            first_failure_ms=now,
            last_failure_ms=now,
        )

    # -- EmitterListener --------------------------------------------------------------------

    def delivered(self, events: Sequence[PendingEvent]) -> None:
        """Settle the offsets of delivered events (stale generations are ignored)."""
        self._metrics.events_delivered.add(len(events))
        oldest_ms = self._settle([event.tag for event in events])
        if oldest_ms is not None:
            # One observation per batch, its oldest slice: the worst freshness it delivered.
            self._metrics.event_age.record(max(0, _now_ms() - oldest_ms) / 1000)

    def failed(self, events: Sequence[PendingEvent], failure: DeliveryFailure) -> None:
        """Dead-letter what the sink gave up on; leave abandoned events unsettled."""
        error_class = _ERROR_CLASSES.get(failure.reason)
        if error_class is None:
            return  # abandoned: it will be read again
        items: list[_Letter] = []
        for event in events:
            tag: RecordTag = event.tag
            if not self._tracker.current(tag.slice):
                continue  # no longer ours: the new owner reads it again
            record = tag.record
            topic, partition = _topic_partition(tag.slice.tp)
            letter = DeadLetter(
                topic=topic,
                partition=partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=list(record.headers or ()),
                timestamp_ms=record.timestamp,
                error_class=error_class,
                exception_class=failure.error_class,
                message=failure.message,
                status=failure.status,
                attempts=failure.attempts,
                first_failure_ms=failure.first_failure_ms,
                last_failure_ms=failure.last_failure_ms,
            )
            items.append((letter, tag))
        if items:
            self._enqueue_dead_letters(items)

    def request_finished(self, report: RequestReport) -> None:
        """Record metrics and a span (when spans are recorded) for one collector request."""
        duration_s = (report.end_ns - report.start_ns) / 1e9
        self._metrics.request_duration.record(duration_s)
        self._metrics.batch_size.record(len(report.events))
        if report.will_retry and report.failure_class is not None:
            self._metrics.retries.add(1, {"failure_class": report.failure_class})
        if not self._request_spans:
            return
        parent, links = _trace_of([event.tag for event in report.events[:_MAX_SPAN_LINKS]])
        span = self._tracer.start_span(
            "forwarder send batch",
            context=parent,
            kind=trace.SpanKind.CLIENT,
            start_time=report.start_ns,
            links=links,
            attributes={
                "messaging.batch.message_count": len(report.events),
                "http.response.status_code": report.status or 0,
                "forwarder.will_retry": report.will_retry,
            },
        )
        if report.failure_class is not None:
            span.set_status(trace.StatusCode.ERROR, report.failure_class)
        span.end(end_time=report.end_ns)

    def setup_failure(self, status: int | None, message: str) -> None:
        """Count and log a setup failure (the sink keeps retrying; the gate pauses fetching)."""
        self._metrics.setup_failures.add(1, {"status": str(status or "none")})
        logger.error(
            "collector setup failure (status %s): %s; pausing consumption and backing off",
            status,
            message,
        )

    # -- settling --------------------------------------------------------------------------

    def _settle(self, tags: Sequence[RecordTag]) -> int | None:
        """Settle ``tags``, counted per slice (a batch holds runs of one slice's records);
        return the oldest acceptance time among their slices."""
        settle = self._tracker.settle
        oldest_ms: int | None = None
        run: RecordSlice[Any] | None = None
        count = 0
        for tag in tags:
            piece = tag[0]
            if piece is run:
                count += 1
                continue
            if run is not None:
                settle(run, count)
            run, count = piece, 1
            if oldest_ms is None or piece.first_ms < oldest_ms:
                oldest_ms = piece.first_ms
        if run is not None:
            settle(run, count)
        self._progress.set()
        self._settled.set()
        return oldest_ms

    def _enqueue_dead_letters(self, items: list[_Letter]) -> None:
        if self._dlq_queue is None:
            raise RuntimeError("pipeline is not started")
        self._dlq_pending += len(items)
        self._dlq_queue.put_nowait(items)

    async def _write_dead_letters(self) -> None:
        queue = self._dlq_queue
        assert queue is not None  # noqa: S101 - set by start() before this task exists
        while True:
            items = await queue.get()
            while not queue.empty() and len(items) < _DLQ_BATCH:
                items.extend(queue.get_nowait())
            letters = [letter for letter, _ in items]
            tags = [tag for _, tag in items]
            parent, links = _trace_of(tags)
            with self._tracer.start_as_current_span(
                "forwarder dead-letter",
                context=parent,
                kind=trace.SpanKind.PRODUCER,
                links=links,
                attributes={"messaging.batch.message_count": len(letters)},
            ):
                try:
                    await self._dead_letters.write(letters)
                except DeadLetterWriteError as exc:
                    self._fail(exc)
                    return
                except Exception as exc:  # a writer that died must stop the service too
                    self._fail(
                        DeadLetterWriteError(
                            f"dead-letter writer failed: {exc!r}",
                            topic=self._dead_letters.topic,
                            count=len(letters),
                        )
                    )
                    return
            self._dlq_pending -= len(letters)
            for letter in letters:
                self._metrics.events_dead_lettered.add(1, {"reason": letter.error_class.value})
            logger.warning(
                "dead-lettered %d record(s): %s",
                len(letters),
                sorted({letter.error_class.value for letter in letters}),
            )
            self._settle(tags)

    def _fail(self, exc: FatalForwarderError) -> None:
        if self._failure is None:
            self._failure = exc
            logger.critical("stopping: %s", exc)
        self._progress.set()
        self._settled.set()

    async def wait_for_progress(self, timeout_s: float) -> None:
        """Return once records settled (or the pipeline failed) since the last call, or after
        ``timeout_s``: the consumer loop's wake-up while fetching is paused."""
        if not self._settled.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._settled.wait()
        self._settled.clear()

    # -- draining --------------------------------------------------------------------------

    async def drain(self, partitions: Collection[Hashable] | None, *, timeout_s: float) -> bool:
        """Flush the sink and wait until every taken record of ``partitions`` (default all)
        is settled; True if that happened within ``timeout_s``, False on deadline or failure.
        """
        flush = asyncio.create_task(self.sink.flush(), name="sink-flush")
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    self._progress.clear()
                    if self._failure is not None:
                        return False
                    if self._tracker.outstanding(partitions) == 0:
                        return True
                    await self._progress.wait()
        except TimeoutError:
            return False
        finally:
            if not flush.done():
                flush.cancel()
            await asyncio.gather(flush, return_exceptions=True)
