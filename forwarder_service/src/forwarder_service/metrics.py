"""The forwarder's instruments (OpenTelemetry API; exported as Prometheus text on the admin port).

Names, as ``/metrics`` shows them (prefix ``tracking_forwarder_``): ``events_consumed_total``,
``events_delivered_total``, ``events_dead_lettered_total{reason}``,
``retries_total{failure_class}``, ``batch_size_events`` and ``request_duration_seconds``
(histograms), ``consumer_lag{topic,partition}``, ``paused_partitions``, ``backlog_events``,
``backlog_bytes``, ``setup_failures_total{status}``, ``commits_total``,
``commit_failures_total{reason}``, ``event_age_seconds`` (histogram),
``oldest_undelivered_age_seconds`` and ``ready``.

Gauges are observed at scrape time from plain values (or callables) the service keeps current,
so the hot path only adds to counters. :meth:`ForwarderMetrics.start_at_zero` exports every
known label value at 0, so ``increase()`` sees the first failure and panels show 0, not
"No data".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from tracking_common.telemetry import AGE_BUCKETS_S, BATCH_SIZE_BUCKETS, LATENCY_BUCKETS_S

from forwarder_service.dead_letter import ErrorClass

__all__ = ["COMMIT_FAILURE_REASONS", "RETRY_CLASSES", "ForwarderMetrics", "GaugeValues"]

_PREFIX = "tracking_forwarder_"
COMMIT_FAILURE_REASONS: Final = ("rebalance", "error", "timeout")
RETRY_CLASSES: Final = ("5xx", "4xx", "timeout", "connect", "dropped", "setup")
"""The ``failure_class`` values a retry is counted under in practice (TLS and DNS errors count
as ``setup``)."""


@dataclass(slots=True)
class GaugeValues:
    """Current values behind the observable gauges (set by the service, read at scrape)."""

    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    paused_partitions: int = 0
    backlog_events: int = 0
    backlog_bytes: int = 0
    backlog_source: Callable[[], tuple[int, int]] | None = None
    # What /readyz answers (forwarder_service.readiness): the probe and the gauge share it.
    ready: Callable[[], bool] = lambda: False
    oldest_undelivered_age_s: Callable[[], float] = lambda: 0.0


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
            callbacks=[self._scalar(lambda: int(self.gauges.ready()))],
            description="1 while /readyz answers 200 (every readiness check passes).",
        )
        self.event_age = meter.create_histogram(
            _PREFIX + "event_age",
            unit="s",
            description="Age of the oldest event of each delivered batch at the collector's 2xx, "
            "from its acceptance (collector_tstamp).",
            explicit_bucket_boundaries_advisory=list(AGE_BUCKETS_S),
        )
        meter.create_observable_gauge(
            _PREFIX + "oldest_undelivered_age_seconds",
            callbacks=[self._scalar(lambda: self.gauges.oldest_undelivered_age_s())],  # noqa: PLW0108
            description="Age, from acceptance, of the oldest event taken from Kafka and not yet "
            "delivered or dead-lettered (0 when none waits).",
        )

    def start_at_zero(self, *, setup_statuses: Iterable[str]) -> None:
        """Export each counter at 0 for every known label value (call once, at start-up)."""
        for counter in (self.events_consumed, self.events_delivered, self.commits):
            counter.add(0)
        for error_class in ErrorClass:
            self.events_dead_lettered.add(0, {"reason": error_class.value})
        for failure_class in RETRY_CLASSES:
            self.retries.add(0, {"failure_class": failure_class})
        for status in setup_statuses:
            self.setup_failures.add(0, {"status": status})
        for reason in COMMIT_FAILURE_REASONS:
            self.commit_failures.add(0, {"reason": reason})

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
        read: Callable[[], float],
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(read())]

        return observe
