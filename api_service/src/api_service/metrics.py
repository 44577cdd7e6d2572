"""The API's instruments (OpenTelemetry API; exported as Prometheus text on the admin port).

Names, as ``/metrics`` shows them (prefix ``tracking_api_``): ``requests_total{route,status}``,
``events_total{source,outcome}`` (outcome accepted or rejected),
``events_rejected_total{source,reason}``, ``request_duration_seconds{route}``,
``produce_duration_seconds``, ``kafka_errors_total{kind}``, ``auth_failures_total``,
``rate_limited_total``, ``producer_buffer_bytes``, ``in_flight_requests`` and ``ready``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from tracking_common.telemetry import LATENCY_BUCKETS_S

__all__ = ["ApiMetrics", "GaugeSources"]

_PREFIX = "tracking_api_"


@dataclass(slots=True)
class GaugeSources:
    """Where the gauges read their values at scrape time."""

    buffered_bytes: Callable[[], int] = lambda: 0
    in_flight: Callable[[], int] = lambda: 0
    ready: Callable[[], bool] = lambda: False


class ApiMetrics:
    """Every instrument of the API, created once per app.

    Gauges read ``sources`` at scrape time through lambdas, so the app can swap them later.
    """

    def __init__(self, meter: Meter | None = None) -> None:
        meter = meter or metrics.get_meter("api_service")
        self.sources = GaugeSources()
        self.requests = meter.create_counter(
            _PREFIX + "requests", description="HTTP requests, by route and status code."
        )
        self.events = meter.create_counter(
            _PREFIX + "events", description="Events received, by source and outcome."
        )
        self.events_rejected = meter.create_counter(
            _PREFIX + "events_rejected",
            description="Rejected events (sent to the bad-events topic), by first reason.",
        )
        self.request_duration = meter.create_histogram(
            _PREFIX + "request_duration",
            unit="s",
            description="Time to answer a request, by route.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self.produce_duration = meter.create_histogram(
            _PREFIX + "produce_duration",
            unit="s",
            description="Time for Kafka to acknowledge one request's messages.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self.kafka_errors = meter.create_counter(
            _PREFIX + "kafka_errors",
            description="Requests answered 503 because Kafka did not acknowledge, by kind.",
        )
        self.auth_failures = meter.create_counter(
            _PREFIX + "auth_failures", description="Requests refused with 401."
        )
        self.rate_limited = meter.create_counter(
            _PREFIX + "rate_limited", description="Requests refused with 429."
        )
        meter.create_observable_gauge(
            _PREFIX + "producer_buffer_bytes",
            callbacks=[self._observe(lambda: self.sources.buffered_bytes())],  # noqa: PLW0108
            description="Bytes handed to Kafka and not yet acknowledged.",
        )
        meter.create_observable_gauge(
            _PREFIX + "in_flight_requests",
            callbacks=[self._observe(lambda: self.sources.in_flight())],  # noqa: PLW0108
            description="Requests being handled.",
        )
        meter.create_observable_gauge(
            _PREFIX + "ready",
            callbacks=[self._observe(lambda: int(self.sources.ready()))],
            description="1 while the API is ready to take traffic.",
        )

    @staticmethod
    def _observe(
        read: Callable[[], int],
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(read())]

        return callback
