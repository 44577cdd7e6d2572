"""W3C trace context in Kafka headers: injection and extraction round trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from tracking_common.tracing import context_from_headers, trace_headers


@pytest.fixture
def tracer() -> Iterator[trace.Tracer]:
    # A provider of our own, never installed globally, so other tests see the defaults.
    provider = TracerProvider()
    yield provider.get_tracer("test")
    provider.shutdown()


def test_the_current_span_travels_in_traceparent(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("produce") as span:
        headers = trace_headers()
        sent = span.get_span_context()

    names = [name for name, _ in headers]
    assert "traceparent" in names
    assert all(isinstance(value, bytes) for _, value in headers)

    received = trace.get_current_span(context_from_headers(headers)).get_span_context()
    assert received.is_remote
    assert (received.trace_id, received.span_id) == (sent.trace_id, sent.span_id)
    assert received.trace_flags == sent.trace_flags


def test_a_consumer_span_continues_the_producer_trace(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("produce") as producer_span:
        headers = trace_headers()

    with tracer.start_as_current_span(
        "consume", context=context_from_headers(headers)
    ) as consumer_span:
        pass

    assert consumer_span.get_span_context().trace_id == producer_span.get_span_context().trace_id
    assert isinstance(consumer_span, ReadableSpan)
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer_span.get_span_context().span_id


def test_an_explicit_context_is_used_instead_of_the_current_one(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("other") as span:
        context = trace.set_span_in_context(span)
    with tracer.start_as_current_span("current"):
        headers = trace_headers(context)

    received = trace.get_current_span(context_from_headers(headers)).get_span_context()
    assert received.span_id == span.get_span_context().span_id


def test_tracestate_is_carried_too(tracer: trace.Tracer) -> None:
    traceparent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    parent = context_from_headers([("traceparent", traceparent), ("tracestate", b"vendor=v1")])
    with tracer.start_as_current_span("child", context=parent):
        headers = dict(trace_headers())

    assert headers["tracestate"] == b"vendor=v1"
    assert headers["traceparent"].startswith(b"00-0af7651916cd43dd8448eb211c80319c-")


def test_no_span_means_no_headers() -> None:
    assert trace_headers() == []


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        [("traceparent", None)],
        [("traceparent", b"garbage")],
        [("event-id", b"x"), ("Traceparent-Other", b"y")],
    ],
)
def test_missing_or_broken_headers_give_an_empty_context(
    headers: list[tuple[str, bytes | None]] | None,
) -> None:
    span = trace.get_current_span(context_from_headers(headers))

    assert not span.get_span_context().is_valid


def test_only_trace_headers_are_read() -> None:
    traceparent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    context = context_from_headers([("event-id", traceparent), ("record-schema", traceparent)])

    assert not trace.get_current_span(context).get_span_context().is_valid
