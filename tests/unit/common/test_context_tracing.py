"""Context-only spans: fresh ids, the caller's trace continued, and what configures them."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from tracking_common.context_tracing import ContextOnlyTracer, ContextOnlyTracerProvider
from tracking_common.observability import build_tracer_provider
from tracking_common.tracing import trace_headers

CALLER = SpanContext(
    0x4BF92F3577B34DA6A3CE929D0E0E4736,
    0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(0),
)


def test_a_root_span_starts_a_sampled_trace_with_new_ids() -> None:
    tracer = ContextOnlyTracer()

    first = tracer.start_span("a").get_span_context()
    second = tracer.start_span("b").get_span_context()

    assert first.is_valid
    assert second.is_valid
    assert first.trace_id != second.trace_id
    assert first.span_id != second.span_id
    assert first.trace_flags.sampled  # a downstream parent-based sampler keeps the trace
    assert not tracer.start_span("c").is_recording()


def test_a_child_continues_the_callers_trace_and_sampling_decision() -> None:
    caller = trace.set_span_in_context(NonRecordingSpan(CALLER))

    child = ContextOnlyTracer().start_span("child", context=caller).get_span_context()

    assert child.trace_id == CALLER.trace_id
    assert child.span_id != CALLER.span_id
    assert not child.trace_flags.sampled  # the caller's decision, as ParentBased keeps it
    assert not child.is_remote


def test_the_span_context_reaches_the_record_headers() -> None:
    span = ContextOnlyTracer().start_span("request")
    context = span.get_span_context()

    headers = dict(trace_headers(trace.set_span_in_context(span)))

    assert headers["traceparent"] == (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-01".encode()
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_TRACES_EXPORTER", "console"),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
    ],
)
def test_an_exporter_or_a_sampler_gets_the_sdk_provider(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv(variable, value)

    provider = build_tracer_provider(Resource.create({}))
    try:
        assert isinstance(provider, TracerProvider)
    finally:
        provider.shutdown()


def test_nothing_to_export_gets_context_only_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
    ):
        monkeypatch.delenv(name, raising=False)

    provider = build_tracer_provider(Resource.create({}))

    assert isinstance(provider, ContextOnlyTracerProvider)
    assert isinstance(provider.get_tracer("api_service"), ContextOnlyTracer)
