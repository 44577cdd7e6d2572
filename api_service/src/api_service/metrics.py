"""The API's instruments (OpenTelemetry API; exported as Prometheus text on the admin port).

Names, as ``/metrics`` shows them (prefix ``tracking_api_``): ``requests_total{route,status}``,
``events_total{source,outcome}`` (outcome accepted or rejected),
``events_rejected_total{source,reason}``, ``request_duration_seconds{route}``,
``produce_duration_seconds``, ``kafka_errors_total{kind}``, ``auth_failures_total``,
``rate_limited_total``, ``requests_shed_total``, ``producer_buffer_bytes``,
``in_flight_requests``, ``kafka_available`` and ``ready``.

:meth:`ApiMetrics.start_at_zero` exports the counters with known labels at 0, so
``increase()`` sees the first failure and panels show 0 rather than "No data".

The two counters every request updates (``requests_total`` and ``events_total``) are
:class:`Tally` instances: a dict increment per request, read at scrape time. An OpenTelemetry
``Counter.add`` with attributes costs about 20 us on this project's machines (hashing and
locking per call); the tally costs a fraction of a microsecond and exports the same counter.
The two duration histograms are :class:`HistogramTally` instances for the same reason
(``Histogram.record`` 20-24 us, the tally 0.3-0.6 us): bucket counts in a list per label value,
rendered at scrape time by :class:`ScrapedHistograms`, a Prometheus collector the entrypoint
registers, with the names and buckets the OpenTelemetry exporter gave them. They are therefore
on ``/metrics`` only, not in an OTLP metrics export.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from prometheus_client.core import HistogramMetricFamily, Metric
from tracking_common.telemetry import LATENCY_BUCKETS_S

__all__ = [
    "EVENT_SOURCES",
    "KAFKA_ERROR_KINDS",
    "UNMATCHED_ROUTE",
    "ApiMetrics",
    "GaugeSources",
    "HistogramTally",
    "ScrapedHistograms",
    "Tally",
]

_PREFIX = "tracking_api_"
KAFKA_ERROR_KINDS: Final = ("unavailable", "timeout", "buffer_full", "error")
"""The ``kind`` values of :class:`~tracking_producer.PublishError`."""
UNMATCHED_ROUTE: Final = "unmatched"
"""The one ``route`` label of requests no route matched (404, 405): paths never become labels."""
EVENT_SOURCES: Final = ("v1", "tp2", "pixel")
"""The ``source`` values of events."""


class Tally:
    """A monotonic counter kept in a dict by label values, and exported at scrape time.

    For counters updated on every request: :meth:`add` is one dict update, where a synchronous
    OpenTelemetry counter hashes and locks its attributes on each call.
    """

    def __init__(self, *labels: str) -> None:
        self._labels = labels
        self._counts: dict[tuple[str, ...], int] = {}

    def add(self, amount: int, *values: str) -> None:
        """Count ``amount`` under the label ``values`` (in the order of ``labels``)."""
        self._counts[values] = self._counts.get(values, 0) + amount

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        """The counts, for an observable counter's callback."""
        # A copy, taken in one step: an exporter thread may read while the loop counts.
        counts = dict(self._counts)
        return [
            Observation(count, dict(zip(self._labels, values, strict=True)))
            for values, count in counts.items()
        ]


class HistogramTally:
    """A histogram kept in lists by label values (bucket counts and sum), read at scrape time.

    For durations recorded on every request: :meth:`record` is a bisection and two list
    updates, where a synchronous OpenTelemetry histogram hashes and locks its attributes.
    """

    def __init__(self, name: str, description: str, buckets: Sequence[float], *labels: str) -> None:
        self.name = name
        self.description = description
        self._bounds = tuple(buckets)
        self.labels = labels
        self._series: dict[tuple[str, ...], list[float]] = {}  # counts by bucket, then the sum

    def record(self, value: float, *values: str) -> None:
        """Count ``value`` under the label ``values`` (in the order of ``labels``)."""
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = [0.0] * (len(self._bounds) + 2)
        # A bucket counts values up to and including its bound (Prometheus's "le").
        series[bisect_left(self._bounds, value)] += 1
        series[-1] += value

    def metric(self) -> HistogramMetricFamily:
        """The Prometheus histogram: cumulative buckets, count and sum per label values."""
        family = HistogramMetricFamily(self.name, self.description, labels=self.labels)
        bounds = [*(_le(bound) for bound in self._bounds), "+Inf"]
        # A copy per series, taken in one step: the scrape may run while the loop records.
        for values, series in list(self._series.items()):
            counts, total, cumulative = series[:-1], series[-1], 0.0
            buckets = []
            for bound, count in zip(bounds, counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric(list(values), buckets, total)
        return family


def _le(bound: float) -> str:
    return repr(float(bound))  # 0.0005, 1.0, 30.0: as the OpenTelemetry exporter writes them


class ScrapedHistograms:
    """A Prometheus collector (``registry.register``) of :class:`HistogramTally` instances."""

    def __init__(self, *histograms: HistogramTally) -> None:
        self._histograms = histograms

    def collect(self) -> Iterator[Metric]:
        """Each histogram's current state."""
        for histogram in self._histograms:
            yield histogram.metric()


@dataclass(slots=True)
class GaugeSources:
    """Where the gauges read their values at scrape time."""

    buffered_bytes: Callable[[], int] = lambda: 0
    in_flight: Callable[[], int] = lambda: 0
    ready: Callable[[], bool] = lambda: False
    kafka_available: Callable[[], bool] = lambda: False


class ApiMetrics:
    """Every instrument of the API, created once per app.

    Gauges read ``sources`` at scrape time through lambdas, so the app can swap them later.
    """

    def __init__(self, meter: Meter | None = None) -> None:
        meter = meter or metrics.get_meter("api_service")
        self.sources = GaugeSources()
        self.requests = Tally("route", "status")
        meter.create_observable_counter(
            _PREFIX + "requests",
            callbacks=[self.requests.observe],
            description="HTTP requests, by route and status code.",
        )
        self.requests.add(0, UNMATCHED_ROUTE, "404")
        self.events = Tally("source", "outcome")
        meter.create_observable_counter(
            _PREFIX + "events",
            callbacks=[self.events.observe],
            description="Events received, by source and outcome.",
        )
        for source in EVENT_SOURCES:
            for outcome in ("accepted", "rejected"):
                self.events.add(0, source, outcome)
        self.events_rejected = meter.create_counter(
            _PREFIX + "events_rejected",
            description="Rejected events (sent to the bad-events topic), by first reason.",
        )
        self.request_duration = HistogramTally(
            _PREFIX + "request_duration_seconds",
            "Time to answer a request, by route.",
            LATENCY_BUCKETS_S,
            "route",
        )
        self.produce_duration = HistogramTally(
            _PREFIX + "produce_duration_seconds",
            "Time for Kafka to acknowledge one request's messages.",
            LATENCY_BUCKETS_S,
        )
        self.histograms = ScrapedHistograms(self.request_duration, self.produce_duration)
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
        self.requests_shed = meter.create_counter(
            _PREFIX + "requests_shed",
            description="Requests refused with 503 because API_MAX_CONCURRENT_REQUESTS were "
            "already being handled.",
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
            description="1 while /readyz answers 200 (started and not shutting down).",
        )
        meter.create_observable_gauge(
            _PREFIX + "kafka_available",
            callbacks=[self._observe(lambda: int(self.sources.kafka_available()))],
            description="1 while the producer is connected to Kafka and under its buffer budget.",
        )

    def start_at_zero(self) -> None:
        """Export each counter at 0 for every known label value (call once, at start-up)."""
        for counter in (self.auth_failures, self.rate_limited, self.requests_shed):
            counter.add(0)
        for kind in KAFKA_ERROR_KINDS:
            self.kafka_errors.add(0, {"kind": kind})

    @staticmethod
    def _observe(
        read: Callable[[], int],
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(read())]

        return callback
