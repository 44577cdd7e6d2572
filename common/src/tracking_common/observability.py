"""Process-wide telemetry and logging set-up for the services' entrypoints.

Needs the ``service`` extra (``tracking-common[service]``). Library code never calls this:
only a composition root does, once per process.

- Traces: an SDK TracerProvider; spans are exported over OTLP/HTTP when
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (or
  ``OTEL_TRACES_EXPORTER`` says ``otlp``/``console``); sampling follows ``OTEL_TRACES_SAMPLER``.
- Metrics: an SDK MeterProvider read by Prometheus (served by each service on its admin port),
  plus OTLP export when an OTLP endpoint is configured.
- Logs: one JSON object per line, with the trace and span ids of the current span.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

import orjson
from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

__all__ = ["JsonLogFormatter", "Telemetry", "configure_logging", "configure_telemetry"]

_LOCK: Final = threading.Lock()
_STANDARD_RECORD_KEYS: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of msg with terminal colour codes
}


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Handles to the process's providers; ``metrics_text`` renders the Prometheus page."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    registry: CollectorRegistry

    def metrics_text(self) -> bytes:
        """The Prometheus text exposition of every metric of this process."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        """Flush and stop exporters (bounded by the SDK's own export timeouts)."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


_CONFIGURED: Telemetry | None = None


def _otlp_wanted(signal: str) -> bool:
    exporter = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip().lower()
    if exporter:
        return "otlp" in exporter.split(",")
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    )


def configure_telemetry(service_name: str) -> Telemetry:
    """Install the SDK providers once per process and return them (idempotent)."""
    global _CONFIGURED  # noqa: PLW0603 - OpenTelemetry providers are process-global by design
    with _LOCK:
        if _CONFIGURED is not None:
            return _CONFIGURED
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
        resource = Resource.create(attributes)
        tracer_provider = TracerProvider(resource=resource)
        if _otlp_wanted("traces"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
            tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        readers: list[MetricReader] = [PrometheusMetricReader(scope_info_enabled=False)]
        if _otlp_wanted("metrics"):
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
                OTLPMetricExporter,
            )

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        _CONFIGURED = Telemetry(tracer_provider, meter_provider, REGISTRY)
        return _CONFIGURED


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, extras and trace ids."""

    # The timestamp ends in "Z", so it must be UTC whoever builds the formatter.
    converter = staticmethod(time.gmtime)

    def __init__(self, *, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as compact JSON."""
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        entry.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _STANDARD_RECORD_KEYS and not key.startswith("_")
        )
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str, *, service: str) -> None:
    """Send JSON log lines to stderr at ``level`` (replacing existing root handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter(service=service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
