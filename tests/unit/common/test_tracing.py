"""W3C trace context in Kafka headers, with an SDK provider local to each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import Tracer
from tracking_common.tracing import context_from_headers, trace_headers


@pytest.fixture
def tracer() -> Iterator[Tracer]:
    # A provider of the test's own, never installed globally, so other tests see no change.
    provider = TracerProvider()
    yield provider.get_tracer("tests.tracing")
    provider.shutdown()


def test_the_current_span_round_trips_through_headers(tracer: Tracer) -> None:
    with tracer.start_as_current_span("produce") as span:
        headers = trace_headers()

    names = [name for name, _ in headers]
    assert "traceparent" in names
    assert all(isinstance(value, bytes) for _, value in headers)
    extracted = trace.get_current_span(context_from_headers(headers)).get_span_context()
    expected = span.get_span_context()
    assert extracted.trace_id == expected.trace_id
    assert extracted.span_id == expected.span_id
    assert extracted.is_remote


def test_a_given_context_is_used_instead_of_the_current_one(tracer: Tracer) -> None:
    with tracer.start_as_current_span("outer") as outer:
        context = trace.set_span_in_context(outer)
    with tracer.start_as_current_span("other"):
        headers = trace_headers(context)

    extracted = trace.get_current_span(context_from_headers(headers)).get_span_context()
    assert extracted.span_id == outer.get_span_context().span_id


def test_a_consumer_span_continues_the_producer_trace(tracer: Tracer) -> None:
    with tracer.start_as_current_span("produce") as producer:
        headers = trace_headers()

    with tracer.start_as_current_span("consume", context=context_from_headers(headers)) as child:
        assert child.get_span_context().trace_id == producer.get_span_context().trace_id
        assert isinstance(child, ReadableSpan)
        assert child.parent is not None
        assert child.parent.span_id == producer.get_span_context().span_id


def test_without_a_span_there_are_no_trace_headers() -> None:
    assert [name for name, _ in trace_headers() if name == "traceparent"] == []


def test_missing_null_and_unrelated_headers_give_an_empty_context(tracer: Tracer) -> None:
    with tracer.start_as_current_span("produce"):
        (traceparent,) = [value for name, value in trace_headers() if name == "traceparent"]

    for headers in (
        None,
        [],
        [("traceparent", None)],
        [("record-schema", b"iglu:x"), ("Traceparent-Other", traceparent)],
        [("traceparent", b"garbage")],
    ):
        span_context = trace.get_current_span(context_from_headers(headers)).get_span_context()
        assert not span_context.is_valid, headers
