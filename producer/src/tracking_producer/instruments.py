"""The library's span and metrics, through the OpenTelemetry API.

Without an SDK installed by the application these are no-ops; with one, each call of
:class:`~tracking_producer.producer.EventProducer` records one span and adds to
``tracking_producer_events_total`` once per outcome (``produced``, ``rejected``, ``failed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from opentelemetry import metrics, trace

__all__ = ["Outcome", "ProducerInstruments"]

Outcome = Literal["produced", "rejected", "failed"]
SCOPE: Final = "tracking_producer"


@dataclass(slots=True)
class ProducerInstruments:
    """The tracer and counters, taken from the providers installed when the producer is built."""

    tracer: trace.Tracer = field(default_factory=lambda: trace.get_tracer(SCOPE))
    meter: metrics.Meter = field(default_factory=lambda: metrics.get_meter(SCOPE))
    events: metrics.Counter = field(init=False)

    def __post_init__(self) -> None:
        self.events = self.meter.create_counter(
            "tracking_producer_events",
            unit="{event}",
            description="Events handed to the producer library, by outcome: produced (Kafka "
            "acknowledged), rejected (invalid), failed (not acknowledged in time).",
        )

    def count(self, outcome: Outcome, events: int) -> None:
        """Add ``events`` to the counter of ``outcome`` (nothing for zero)."""
        if events:
            self.events.add(events, {"outcome": outcome})
