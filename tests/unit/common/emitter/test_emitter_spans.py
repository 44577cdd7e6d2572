"""One CLIENT span per request when a tracer records; none made current when none does."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from tracking_common.emitter import AsyncEmitter, EmitterInstruments, RetryPolicy
from tracking_common.emitter.testing import FakeHttpClient, FakeSleep

URL = "http://collector.test"
PAYLOAD = {"e": "pv", "eid": "00000000-0000-4000-8000-000000000001", "tv": "t", "p": "srv"}


async def test_each_attempt_is_one_client_span_with_its_outcome() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    emitter = AsyncEmitter(
        URL,
        client=FakeHttpClient.scripted(500),
        sleep=FakeSleep(),
        retry=RetryPolicy.up_to(3),
        flush_interval_s=None,
        instruments=EmitterInstruments(tracer=provider.get_tracer("test")),
    )
    emitter.add(PAYLOAD)
    await emitter.flush()
    await emitter.close()
    failed, delivered = exporter.get_finished_spans()
    provider.shutdown()
    for span, attempt in ((failed, 1), (delivered, 2)):
        assert span.name == "emitter POST"
        assert span.kind is SpanKind.CLIENT
        assert span.attributes is not None
        assert span.attributes["emitter.attempt"] == attempt
        assert span.attributes["emitter.batch.events"] == 1
    assert failed.attributes is not None
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.status.status_code is StatusCode.ERROR
    assert delivered.status.status_code is StatusCode.UNSET


async def test_without_a_recording_tracer_requests_go_as_before() -> None:
    client = FakeHttpClient.scripted(500)
    emitter = AsyncEmitter(
        URL, client=client, sleep=FakeSleep(), retry=RetryPolicy.up_to(3), flush_interval_s=None
    )
    emitter.add(PAYLOAD)
    await emitter.flush()
    await emitter.close()
    assert len(client.requests) == 2
