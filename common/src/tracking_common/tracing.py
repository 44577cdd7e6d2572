"""W3C trace context carried in Kafka record headers.

The API injects the current span's context (``traceparent``, ``tracestate``) into each record it
produces; the forwarder extracts it so its spans continue the same trace. Only the
OpenTelemetry API is used here: without a configured SDK these are cheap no-ops.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry import propagate
from opentelemetry.context import Context

__all__ = ["context_from_headers", "trace_headers"]

Header = tuple[str, bytes]


def trace_headers(context: Context | None = None) -> list[Header]:
    """The current (or given) trace context as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(name, value.encode()) for name, value in carrier.items()]


def context_from_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> Context:
    """The trace context found in Kafka headers (an empty context when there is none)."""
    carrier: dict[str, str] = {}
    for name, value in headers or ():
        if value is not None and name in _PROPAGATED:
            carrier[name] = value.decode("latin-1")
    return propagate.extract(carrier)


_PROPAGATED: Sequence[str] = ("traceparent", "tracestate", "baggage")
