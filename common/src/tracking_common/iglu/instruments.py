"""The resolver's span, metrics and log (OpenTelemetry API only: no-ops without an SDK).

Metrics (Prometheus adds ``_total`` to counters and the unit to histograms):

- ``tracking_iglu_lookups{outcome}``: schemas looked up in the registries (cache misses), by
  outcome ``found``, ``not_found``, ``unusable`` or ``unavailable``;
- ``tracking_iglu_resolution_duration``: seconds one request waited for its look-ups.

One INTERNAL span ``iglu resolve`` per request that had to look a schema up (a request served
from the cache has none). Registry failures are logged by ``tracking_common.iglu``, whose
repeats the services' log filter limits to one line per kind every 30 s.
"""

from __future__ import annotations

import logging
from typing import Final

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer

from tracking_common.telemetry import LATENCY_BUCKETS_S

__all__ = ["IgluInstruments", "logger"]

logger = logging.getLogger("tracking_common.iglu")

_PREFIX: Final = "tracking_iglu_"


class IgluInstruments:
    """Every instrument of one resolver; pass your own meter/tracer to scope them."""

    def __init__(self, *, meter: Meter | None = None, tracer: Tracer | None = None) -> None:
        meter = meter or metrics.get_meter("tracking_common.iglu")
        self.tracer = tracer or trace.get_tracer("tracking_common.iglu")
        self.lookups = meter.create_counter(
            _PREFIX + "lookups", description="Schemas looked up in the registries, by outcome."
        )
        self.resolution_duration = meter.create_histogram(
            _PREFIX + "resolution_duration",
            unit="s",
            description="Time one request waited for its schema look-ups.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
