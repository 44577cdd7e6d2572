"""Spans of the forwarder continue the trace the API put in the record headers."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import replace
from typing import cast

from forwarder_service.offsets import OffsetTracker, RecordSlice
from forwarder_service.pipeline import Pipeline
from forwarder_service.ports import RecordTag
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tracking_common.context_tracing import ContextOnlyTracer
from tracking_common.emitter import PendingEvent, RequestReport

from tests.support.forwarder_fakes import TP0, FakeDeadLetters, FakeSink, InMemoryMetrics, records

TRACE_A = "0af7651916cd43dd8448eb211c80319c"
TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736"


def _traceparent(trace_id: str, span_id: str) -> bytes:
    return f"00-{trace_id}-{span_id}-01".encode()


async def test_a_batch_span_continues_the_first_records_trace_and_links_the_others() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    tracker.assign([TP0])
    pipeline = Pipeline(
        tracker=tracker,
        dead_letters=FakeDeadLetters(),
        metrics=InMemoryMetrics().metrics,
        tracer=provider.get_tracer("test"),
    )
    sink = FakeSink(listener=pipeline)
    pipeline.bind(sink)
    plain, first, second = records(TP0, range(3))
    batch = [
        plain,  # no trace context: skipped
        replace(first, headers=[("traceparent", _traceparent(TRACE_A, "b7ad6b7169203331"))]),
        replace(second, headers=[("traceparent", _traceparent(TRACE_B, "00f067aa0ba902b7"))]),
    ]
    piece = RecordSlice(TP0, 1, 0, 2, 3, 0)
    events = [PendingEvent(b"", 0, RecordTag(piece, record)) for record in batch]
    pipeline.request_finished(
        RequestReport(
            events=events,
            status=200,
            failure_class=None,
            start_ns=1,
            end_ns=2,
            attempt=1,
            will_retry=False,
            body_bytes=0,
        )
    )
    (span,) = exporter.get_finished_spans()
    provider.shutdown()
    assert span.name == "forwarder send batch"
    assert span.kind is SpanKind.CLIENT
    assert format(span.context.trace_id, "032x") == TRACE_A
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert [format(link.context.trace_id, "032x") for link in span.links] == [TRACE_B]
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == 3


class _Unreadable:
    """Headers that must not be read: nothing records the span they would feed."""

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        raise AssertionError("headers read for a span nobody records")

    def __len__(self) -> int:
        return 1


def test_without_recorded_spans_a_request_costs_only_its_metrics() -> None:
    metrics = InMemoryMetrics()
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    tracker.assign([TP0])
    pipeline = Pipeline(
        tracker=tracker,
        dead_letters=FakeDeadLetters(),
        metrics=metrics.metrics,
        tracer=ContextOnlyTracer(),
    )
    [record] = records(TP0, [0])
    unreadable = replace(record, headers=cast("Sequence[tuple[str, bytes]]", _Unreadable()))
    piece = RecordSlice(TP0, 1, 0, 0, 1, 0)
    pipeline.request_finished(
        RequestReport(
            events=[PendingEvent(b"", 0, RecordTag(piece, unreadable))],
            status=200,
            failure_class=None,
            start_ns=1,
            end_ns=2,
            attempt=1,
            will_retry=False,
            body_bytes=0,
        )
    )
    assert metrics.points("tracking_forwarder_batch_size_events") == {(): 1.0}
