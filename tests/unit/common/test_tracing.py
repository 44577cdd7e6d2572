"""W3C trace context in Kafka headers, with an SDK provider local to each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import CarrierT, Setter, default_setter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, Tracer, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from tracking_common.tracing import _writes_w3c_only, context_from_headers, trace_headers


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


_STATE_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_TOKENS = st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True)


@given(
    trace_id=st.integers(0, 2**128 - 1),
    span_id=st.integers(0, 2**64 - 1),
    sampled=st.booleans(),
    state=st.dictionaries(_STATE_KEYS, _TOKENS, max_size=3),
    entries=st.dictionaries(_TOKENS, _TOKENS, max_size=2),
)
def test_the_headers_are_what_the_default_propagators_write(
    trace_id: int, span_id: int, sampled: bool, state: dict[str, str], entries: dict[str, str]
) -> None:
    span_context = SpanContext(
        trace_id,
        span_id,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        trace_state=TraceState(list(state.items())),
    )
    context = trace.set_span_in_context(NonRecordingSpan(span_context))
    for name, value in entries.items():
        context = baggage.set_baggage(name, value, context)
    carrier: dict[str, str] = {}
    CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]).inject(
        carrier, context=context
    )

    assert _writes_w3c_only(propagate.get_global_textmap())  # the path written by hand
    assert trace_headers(context) == [(name, value.encode()) for name, value in carrier.items()]
    token = otel_context.attach(context)  # the current context, as the API's span makes it
    try:
        assert trace_headers() == [(name, value.encode()) for name, value in carrier.items()]
    finally:
        otel_context.detach(token)


def test_another_global_propagator_writes_its_own_headers(tracer: Tracer) -> None:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([_Marker(), TraceContextTextMapPropagator()]))
    try:
        with tracer.start_as_current_span("produce"):
            names = [name for name, _ in trace_headers()]
    finally:
        propagate.set_global_textmap(previous)

    assert names == ["x-marker", "traceparent"]


class _Marker(TraceContextTextMapPropagator):
    """A propagator of the test's own, writing one header of its own."""

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        setter.set(carrier, "x-marker", "1")
