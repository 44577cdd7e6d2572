"""The duration histograms tallied per request and rendered at scrape time."""

from __future__ import annotations

from api_service.metrics import ApiMetrics, HistogramTally, ScrapedHistograms
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest
from tracking_common.telemetry import LATENCY_BUCKETS_S


def scrape(*histograms: HistogramTally) -> list[str]:
    registry = CollectorRegistry()
    registry.register(ScrapedHistograms(*histograms))
    return generate_latest(registry).decode().splitlines()


def test_buckets_are_cumulative_and_include_their_bound() -> None:
    histogram = HistogramTally("work_seconds", "Time worked.", (0.1, 1.0), "route")
    for value in (0.05, 0.1, 0.5, 2.0):
        histogram.record(value, "/v1/events")
    histogram.record(0.2, "/i")

    lines = scrape(histogram)

    assert lines[:2] == ["# HELP work_seconds Time worked.", "# TYPE work_seconds histogram"]
    assert 'work_seconds_bucket{le="0.1",route="/v1/events"} 2.0' in lines
    assert 'work_seconds_bucket{le="1.0",route="/v1/events"} 3.0' in lines
    assert 'work_seconds_bucket{le="+Inf",route="/v1/events"} 4.0' in lines
    assert 'work_seconds_count{route="/v1/events"} 4.0' in lines
    assert 'work_seconds_sum{route="/v1/events"} 2.65' in lines
    assert 'work_seconds_bucket{le="0.1",route="/i"} 0.0' in lines
    assert 'work_seconds_count{route="/i"} 1.0' in lines


def test_the_api_histograms_keep_their_names_and_buckets() -> None:
    metrics = ApiMetrics(MeterProvider().get_meter("test"))
    metrics.request_duration.record(0.003, "/v1/events")
    metrics.produce_duration.record(0.002)

    lines = scrape(metrics.request_duration, metrics.produce_duration)

    request_bounds = [
        line.split('le="')[1].split('"')[0]
        for line in lines
        if line.startswith("tracking_api_request_duration_seconds_bucket")
    ]
    assert request_bounds == [*(str(bound) for bound in LATENCY_BUCKETS_S), "+Inf"]
    assert 'tracking_api_request_duration_seconds_count{route="/v1/events"} 1.0' in lines
    assert 'tracking_api_produce_duration_seconds_bucket{le="0.0025"} 1.0' in lines
    assert "tracking_api_produce_duration_seconds_sum 0.002" in lines


def test_an_unrecorded_histogram_exports_no_series() -> None:
    lines = scrape(HistogramTally("idle_seconds", "Idle.", (1.0,)))

    assert not [line for line in lines if line.startswith("idle_seconds_")]
