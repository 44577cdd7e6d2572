"""Process-wide telemetry and logging set-up for the services' entrypoints.

Needs the ``service`` extra (``tracking-common[service]``). Library code never calls this:
only a composition root does, once per process.

- Traces: an SDK TracerProvider; spans are exported over OTLP/HTTP when
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (or
  ``OTEL_TRACES_EXPORTER`` says ``otlp``/``console``); sampling follows ``OTEL_TRACES_SAMPLER``.
  With no exporter and no sampler configured, spans are only their context
  (:mod:`tracking_common.context_tracing`): the trace still reaches the record headers, and
  nobody pays for recording spans that go nowhere.
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
from collections.abc import Callable
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

from tracking_common.context_tracing import ContextOnlyTracerProvider

__all__ = [
    "NOISY_LOGGERS",
    "JsonLogFormatter",
    "RepeatFilter",
    "Telemetry",
    "build_tracer_provider",
    "configure_logging",
    "configure_telemetry",
    "service_name",
]

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

    tracer_provider: TracerProvider | ContextOnlyTracerProvider
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


def service_name(default: str) -> str:
    """The service's one name, in its log lines and its telemetry: ``OTEL_SERVICE_NAME`` when
    set, else ``default``."""
    return os.environ.get("OTEL_SERVICE_NAME", "").strip() or default


def configure_telemetry(default_name: str) -> Telemetry:
    """Install the SDK providers once per process and return them (idempotent); the resource's
    ``service.name`` is :func:`service_name` of ``default_name``, as in the log lines."""
    global _CONFIGURED  # noqa: PLW0603 - OpenTelemetry providers are process-global by design
    with _LOCK:
        if _CONFIGURED is not None:
            return _CONFIGURED
        resource = Resource.create({"service.name": service_name(default_name)})
        tracer_provider = build_tracer_provider(resource)
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


def build_tracer_provider(resource: Resource) -> TracerProvider | ContextOnlyTracerProvider:
    """The SDK's provider with the configured exporters; context-only spans when there are
    none and no sampler is named (a recorded span costs about 60 us, for nothing to read)."""
    console = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console"
    otlp = _otlp_wanted("traces")
    if not (otlp or console or os.environ.get("OTEL_TRACES_SAMPLER", "").strip()):
        return ContextOnlyTracerProvider()
    provider = TracerProvider(resource=resource)
    if otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


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


class RepeatFilter(logging.Filter):
    """Let one record per logger and message template through every ``window_s`` seconds.

    For libraries that log every failed attempt: while Kafka is down, aiokafka logs about a
    hundred lines a second, drowning everything else. The first record of a kind passes; the
    next one after the window passes with ``suppressed``, the count held back meanwhile.
    Only records from the loggers named in ``prefixes`` and their children are limited.
    """

    def __init__(
        self,
        prefixes: tuple[str, ...],
        *,
        window_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 1024,
    ) -> None:
        super().__init__()
        self._names = prefixes
        self._prefixes = tuple(prefix + "." for prefix in prefixes)
        self._window_s = window_s
        self._clock = clock
        self._max_kinds = max_kinds
        self._kinds: dict[tuple[str, object], tuple[float, int]] = {}  # -> (passed at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        """True to emit ``record``."""
        name = record.name
        if name not in self._names and not name.startswith(self._prefixes):
            return True
        now = self._clock()
        kind = (name, record.msg)
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self._window_s:
            self._kinds[kind] = (seen[0], seen[1] + 1)
            return False
        if seen is None and len(self._kinds) >= self._max_kinds:
            self._kinds.clear()  # templates built per call would otherwise grow it forever
        if seen is not None and seen[1]:
            record.suppressed = seen[1]
        self._kinds[kind] = (now, 0)
        return True


NOISY_LOGGERS: Final = ("aiokafka", "tracking_common.iglu")
"""Loggers whose repeats are limited by :class:`RepeatFilter`: aiokafka, and the Iglu
resolver's registry failures (one per look-up while a registry is down)."""


def configure_logging(level: str, *, service: str) -> None:
    """Send JSON log lines to stderr at ``level`` (replacing existing root handlers), with
    :func:`service_name` of ``service``; repeats from :data:`NOISY_LOGGERS` are limited to one
    per kind every 30 s."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter(service=service_name(service)))
    handler.addFilter(RepeatFilter(NOISY_LOGGERS))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
