"""The forwarder's instruments (OpenTelemetry API; exported as Prometheus text on the admin port).

Names, as ``/metrics`` shows them (prefix ``tracking_forwarder_``): ``events_consumed_total``,
``events_delivered_total``, ``events_dead_lettered_total{reason}``,
``retries_total{failure_class}``, ``batch_size_events`` and ``request_duration_seconds``
(histograms), ``consumer_lag{topic,partition}``, ``paused_partitions``, ``backlog_events``,
``backlog_bytes``, ``setup_failures_total{status}``, ``commits_total``, ``ready``.

Gauges are observed at scrape time from plain values the service keeps current, so the hot path
only adds to counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from tracking_common.telemetry import BATCH_SIZE_BUCKETS, LATENCY_BUCKETS_S

__all__ = ["ForwarderMetrics", "GaugeValues"]

_PREFIX = "tracking_forwarder_"


@dataclass(slots=True)
class GaugeValues:
    """Current values behind the observable gauges (set by the service, read at scrape)."""

    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    paused_partitions: int = 0
    backlog_events: int = 0
    backlog_bytes: int = 0
    ready: bool = False
    backlog_source: Callable[[], tuple[int, int]] | None = None


class ForwarderMetrics:
    """Every instrument of the forwarder, created once per process."""

    def __init__(self, meter: Meter | None = None) -> None:
        meter = meter or metrics.get_meter("forwarder_service")
        self.gauges = GaugeValues()
        self.events_consumed = meter.create_counter(
            _PREFIX + "events_consumed", description="Records taken from the events topic."
        )
        self.events_delivered = meter.create_counter(
            _PREFIX + "events_delivered", description="Events the collector accepted (2xx)."
        )
        self.events_dead_lettered = meter.create_counter(
            _PREFIX + "events_dead_lettered",
            description="Records written to the dead-letter topic, by reason.",
        )
        self.retries = meter.create_counter(
            _PREFIX + "retries", description="Batch send retries, by failure class."
        )
        self.batch_size = meter.create_histogram(
            _PREFIX + "batch_size_events",
            description="Events per collector request.",
            explicit_bucket_boundaries_advisory=list(BATCH_SIZE_BUCKETS),
        )
        self.request_duration = meter.create_histogram(
            _PREFIX + "request_duration_seconds",
            unit="s",
            description="Collector request latency.",
            explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS_S),
        )
        self.setup_failures = meter.create_counter(
            _PREFIX + "setup_failures",
            description="Collector answers that mean the setup is broken, by status.",
        )
        self.commits = meter.create_counter(
            _PREFIX + "commits", description="Offset commits acknowledged by Kafka."
        )
        self.commit_failures = meter.create_counter(
            _PREFIX + "commit_failures",
            description="Offset commits not acknowledged, by reason (rebalance, error, "
            "timeout); their records are delivered again after a restart or rebalance.",
        )
        meter.create_observable_gauge(
            _PREFIX + "consumer_lag",
            callbacks=[self._observe_lag],
            description="Records behind the partition's end (log end minus committed offset).",
        )
        meter.create_observable_gauge(
            _PREFIX + "paused_partitions",
            callbacks=[self._scalar(lambda: self.gauges.paused_partitions)],
            description="Assigned partitions whose fetching is paused.",
        )
        meter.create_observable_gauge(
            _PREFIX + "backlog_events",
            callbacks=[self._scalar(lambda: self._backlog()[0])],
            description="Events taken from Kafka and not yet delivered or dead-lettered.",
        )
        meter.create_observable_gauge(
            _PREFIX + "backlog_bytes",
            callbacks=[self._scalar(lambda: self._backlog()[1])],
            description="Bytes of the events in the backlog.",
        )
        meter.create_observable_gauge(
            _PREFIX + "ready",
            callbacks=[self._scalar(lambda: int(self.gauges.ready))],
            description="1 when the forwarder is consuming and can dead-letter.",
        )

    def _backlog(self) -> tuple[int, int]:
        source = self.gauges.backlog_source
        if source is not None:
            return source()
        return self.gauges.backlog_events, self.gauges.backlog_bytes

    def _observe_lag(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(lag, {"topic": topic, "partition": str(partition)})
            for (topic, partition), lag in list(self.gauges.lag.items())
        ]

    @staticmethod
    def _scalar(
        read: Callable[[], int],
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(read())]

        return observe
