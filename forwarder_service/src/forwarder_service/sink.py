"""Builds the forwarder's :class:`~forwarder_service.ports.EventSink` from its settings.

The sink's own buffer is sized above the backlog gate's high-water mark (plus one poll), so the
gate pauses fetching before the sink ever refuses an event; a refusal is still handled (the
consumer seeks back), it just costs a re-fetch.
"""

from __future__ import annotations

from tracking_common.emitter import EmitterListener, HttpClient, RetryPolicy

from forwarder_service.classification import StatusClass, status_table
from forwarder_service.http_sink import HttpSink
from forwarder_service.ports import EventSink
from forwarder_service.settings import ForwarderSettings

__all__ = ["build_sink", "setup_statuses"]

_NO_STATUS = "none"  # a TLS or DNS error: no HTTP answer (the label Pipeline.setup_failure uses)


def build_sink(
    settings: ForwarderSettings, *, listener: EmitterListener, client: HttpClient | None = None
) -> EventSink:
    """The sink that sends to ``COLLECTOR_URL`` (through ``client``, default the core's
    keep-alive ``Http1Client``), reporting to ``listener``."""
    headroom = settings.forwarder_max_poll_records + settings.forwarder_batch_max_events
    return HttpSink(
        collector_url=settings.collector_url,
        listener=listener,
        table=status_table(settings.forwarder_status_overrides),
        batch_max_events=settings.forwarder_batch_max_events,
        batch_max_bytes=settings.forwarder_batch_max_bytes,
        linger_s=settings.forwarder_linger_ms / 1000,
        max_in_flight=settings.forwarder_max_in_flight,
        request_timeout_s=settings.forwarder_request_timeout_s,
        retry=RetryPolicy(
            max_attempts=settings.forwarder_retry_max_attempts or None,
            base_delay_s=settings.forwarder_retry_base_delay_s,
            max_delay_s=settings.forwarder_retry_max_delay_s,
        ),
        setup_backoff_s=settings.forwarder_setup_backoff_s,
        bisect_rejects=settings.forwarder_bisect_rejects,
        capacity_events=settings.forwarder_max_backlog_events + headroom,
        capacity_bytes=settings.forwarder_max_backlog_bytes + headroom * 4096,
        client=client,
    )


def setup_statuses(settings: ForwarderSettings) -> list[str]:
    """The ``status`` labels a setup failure is counted under: every 4xx/5xx the status table
    (with ``FORWARDER_STATUS_OVERRIDES``) classes as setup, and ``none``. Redirects (3xx) are
    setup failures too, but one is counted only when it happens."""
    table = status_table(settings.forwarder_status_overrides)
    statuses = [str(s) for s in range(400, 600) if table.classify(s) is StatusClass.SETUP]
    return [*statuses, _NO_STATUS]
