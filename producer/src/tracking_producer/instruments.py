"""The library's span and metrics, through the OpenTelemetry API.

Without an SDK installed by the application these are no-ops; with one, each call of
:class:`~tracking_producer.producer.EventProducer` records one span and adds to
``tracking_producer_events_total`` once per outcome (``produced``, ``rejected``, ``failed``).
"""

from __future__ import annotations

from typing import Final, Literal

from opentelemetry import metrics, trace

__all__ = ["Outcome", "ProducerInstruments"]

Outcome = Literal["produced", "rejected", "failed"]
SCOPE: Final = "tracking_producer"


class ProducerInstruments:
    """The tracer and counter, from the providers installed when the producer is built (the
    global ones by default)."""

    def __init__(
        self, *, meter: metrics.Meter | None = None, tracer: trace.Tracer | None = None
    ) -> None:
        self.tracer = tracer or trace.get_tracer(SCOPE)
        self.events = (meter or metrics.get_meter(SCOPE)).create_counter(
            "tracking_producer_events",
            unit="{event}",
            description="Events handed to the producer library, by outcome: produced (Kafka "
            "acknowledged), rejected (invalid), failed (not acknowledged in time).",
        )

    def count(self, outcome: Outcome, events: int) -> None:
        """Add ``events`` to the counter of ``outcome`` (nothing for zero)."""
        if events:
            self.events.add(events, {"outcome": outcome})
