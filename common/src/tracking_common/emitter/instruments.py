"""The emitter's spans, metrics and logs (OpenTelemetry API only: no-ops without an SDK).

Metrics (Prometheus adds ``_total`` to counters):

- ``tracking_emitter_requests`` by ``outcome`` (the status class, or ``network``),
- ``tracking_emitter_events_sent``, ``tracking_emitter_events_failed`` by ``reason``,
- ``tracking_emitter_retries`` by ``failure_class``,
- ``tracking_emitter_request_duration_seconds`` and ``tracking_emitter_batch_size_events``.

One CLIENT span per request, ``emitter POST``/``emitter GET``; a warning per give-up and an
error per set-up failure. An application that records these itself from an
:class:`~tracking_common.emitter.EmitterListener` (the forwarder does) passes no-op providers
and ``logs=False``, so nothing is recorded twice.
"""

from __future__ import annotations

import logging
from typing import Final

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer

from tracking_common.emitter.outcomes import DeliveryFailure
from tracking_common.telemetry import BATCH_SIZE_BUCKETS, LATENCY_BUCKETS_S

__all__ = ["EmitterInstruments"]

logger = logging.getLogger("tracking_common.emitter")

_PREFIX: Final = "tracking_emitter_"


class EmitterInstruments:
    """Every instrument of one emitter; pass your own meter/tracer to scope them."""

    def __init__(
        self, *, meter: Meter | None = None, tracer: Tracer | None = None, logs: bool = True
    ) -> None:
        self._logs = logs
        meter = meter or metrics.get_meter("tracking_common.emitter")
        self.tracer = tracer or trace.get_tracer("tracking_common.emitter")
        self.requests = meter.create_counter(
            _PREFIX + "requests", description="Collector requests, by outcome."
        )
        self.events_sent = meter.create_counter(
            _PREFIX + "events_sent", description="Events the collector accepted (2xx)."
        )
        self.events_failed = meter.create_counter(
            _PREFIX + "events_failed", description="Events given up on, by reason."
        )
        self.retries = meter.create_counter(
            _PREFIX + "retries", description="Requests retried, by failure class."
        )
        self.request_duration = meter.create_histogram(
            _PREFIX + "request_duration_seconds",
            unit="s",
            description="Collector request latency.",
            explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS_S),
        )
        self.batch_size = meter.create_histogram(
            _PREFIX + "batch_size_events",
            description="Events per collector request.",
            explicit_bucket_boundaries_advisory=list(BATCH_SIZE_BUCKETS),
        )

    def gave_up(self, events: int, failure: DeliveryFailure, batch_id: str | None) -> None:
        """Count and log events failed for good."""
        self.events_failed.add(events, {"reason": failure.reason.value})
        if not self._logs:
            return
        if failure.reason.value == "abandoned":
            logger.warning("emitter closed with %d undelivered events", events)
            return
        logger.warning(
            "gave up on %d events (batch %s): %s after %d attempts, last status %s: %s",
            events,
            batch_id,
            failure.reason.value,
            failure.attempts,
            failure.status,
            failure.message,
        )

    def setup_failure(self, status: int | None, message: str, batch_id: str | None) -> None:
        """Log a set-up failure (the emitter keeps retrying)."""
        if not self._logs:
            return
        logger.error(
            "collector set-up failure (batch %s, status %s): %s; retrying with a long backoff",
            batch_id,
            status,
            message,
        )
