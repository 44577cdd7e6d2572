"""The forwarder's operational signals: readiness, counters at 0, freshness of deliveries."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Hashable

import aiohttp
import pytest
from aiokafka import TopicPartition
from forwarder_service.admin import AdminServer
from forwarder_service.dead_letter import ErrorClass
from forwarder_service.metrics import COMMIT_FAILURE_REASONS, RETRY_CLASSES
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline
from forwarder_service.readiness import Readiness
from forwarder_service.settings import ForwarderSettings
from forwarder_service.sink import setup_statuses
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from tracking_common.record import encode_record, now_ms

from tests.support.forwarder_fakes import (
    TP0,
    TP1,
    FakeDeadLetters,
    FakeRecord,
    FakeSink,
    InMemoryMetrics,
    event_payload,
    records,
)


def _settings(**values: str) -> ForwarderSettings:
    return ForwarderSettings.model_validate({"collector_url": "http://collector.invalid", **values})


async def test_the_ready_gauge_and_the_probe_fail_together_on_a_collector_setup_failure() -> None:
    metrics = InMemoryMetrics()
    setup_failing = False
    readiness = Readiness(
        {"consumer_joined": lambda: True, "collector_setup": lambda: not setup_failing}
    )
    metrics.metrics.gauges.ready = readiness.ready
    admin = AdminServer(host="127.0.0.1", port=0, checks=readiness.checks, metrics_text=lambda: b"")
    await admin.start()
    try:
        url = f"http://127.0.0.1:{admin.port}/readyz"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as answer:
                assert answer.status == 200
            assert metrics.points("tracking_forwarder_ready") == {(): 1.0}
            setup_failing = True
            async with session.get(url) as answer:
                assert answer.status == 503
                body = await answer.json()
            assert body["checks"] == {"consumer_joined": True, "collector_setup": False}
            assert metrics.points("tracking_forwarder_ready") == {(): 0.0}
    finally:
        await admin.stop()


def test_every_known_label_value_is_exported_at_zero_before_anything_happens() -> None:
    metrics = InMemoryMetrics()
    metrics.metrics.start_at_zero(setup_statuses=setup_statuses(_settings()))
    assert metrics.points("tracking_forwarder_events_dead_lettered") == {
        (("reason", c.value),): 0.0 for c in ErrorClass
    }
    setup = metrics.points("tracking_forwarder_setup_failures")
    assert {"401", "403", "404", "405", "501", "none"} <= {dict(k)["status"] for k in setup}
    assert set(setup.values()) == {0.0}
    assert {dict(k)["failure_class"] for k in metrics.points("tracking_forwarder_retries")} == set(
        RETRY_CLASSES
    )
    assert {dict(k)["reason"] for k in metrics.points("tracking_forwarder_commit_failures")} == set(
        COMMIT_FAILURE_REASONS
    )
    for name in ("events_consumed", "events_delivered", "commits"):
        assert metrics.points(f"tracking_forwarder_{name}") == {(): 0.0}


def test_setup_statuses_follow_the_status_overrides() -> None:
    statuses = setup_statuses(_settings(forwarder_status_overrides="404=retry,418=setup"))
    assert "404" not in statuses
    assert "418" in statuses


@pytest.fixture
async def pipeline() -> AsyncIterator[tuple[Pipeline, FakeSink, InMemoryMetrics]]:
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    tracker.assign([TP0, TP1])
    metrics = InMemoryMetrics()
    pipeline = Pipeline(tracker=tracker, dead_letters=FakeDeadLetters(), metrics=metrics.metrics)
    sink = FakeSink(listener=pipeline)
    pipeline.bind(sink)
    await pipeline.start()
    yield pipeline, sink, metrics
    await pipeline.stop()


def _aged_records(tp: TopicPartition, offsets: range, accepted_ms: int) -> list[FakeRecord]:
    value = encode_record(event_payload(), source="v1", collector_tstamp=accepted_ms)
    return [dataclasses.replace(record, value=value) for record in records(tp, offsets)]


async def test_delivery_records_the_age_of_the_batchs_oldest_event(
    pipeline: tuple[Pipeline, FakeSink, InMemoryMetrics],
) -> None:
    pipe, sink, metrics = pipeline
    pipe.accept(TP0, _aged_records(TP0, range(3), now_ms() - 90_000))
    sink.deliver_all()
    data = metrics.reader.get_metrics_data()
    assert data is not None
    [point] = [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "tracking_forwarder_event_age"
        for p in m.data.data_points
    ]
    assert isinstance(point, HistogramDataPoint)
    assert point.count == 1
    assert 90 <= point.sum < 100


async def test_the_oldest_undelivered_age_follows_what_is_still_waiting(
    pipeline: tuple[Pipeline, FakeSink, InMemoryMetrics],
) -> None:
    pipe, sink, _ = pipeline
    assert pipe.oldest_undelivered_age_s() == 0.0
    pipe.accept(TP0, _aged_records(TP0, range(2), now_ms() - 600_000))
    pipe.accept(TP0, _aged_records(TP0, range(2, 4), now_ms() - 60_000))
    pipe.accept(TP1, _aged_records(TP1, range(1), now_ms() - 5_000))
    assert 600 <= pipe.oldest_undelivered_age_s() < 610
    sink.deliver_all(lambda tag: tag.record.offset < 2 and tag.tp == TP0)
    assert 60 <= pipe.oldest_undelivered_age_s() < 70
    sink.deliver_all()
    assert pipe.oldest_undelivered_age_s() == 0.0
