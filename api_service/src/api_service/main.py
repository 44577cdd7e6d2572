"""``api-service``: the composition root. Reads settings, wires Kafka, serves, drains on SIGTERM.

Shutdown, on SIGTERM or SIGINT: readiness fails at once (load balancers stop sending), the
server keeps serving for ``API_DRAIN_GRACE_S``, then stops accepting, finishes in-flight
requests (up to ``API_SHUTDOWN_TIMEOUT_S``), flushes the producer within what is left of that
deadline and exits 0. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Iterator

import uvicorn
import uvloop
from starlette.types import ASGIApp
from tracking_common.gc_tuning import tune_gc
from tracking_common.observability import configure_logging, configure_telemetry
from tracking_common.settings import SettingsError
from tracking_producer import KafkaPublisher

from api_service.admin import create_admin_app
from api_service.app import build_pipeline, create_app
from api_service.pipeline import RequestPipeline
from api_service.settings import ApiSettings, load_settings

__all__ = ["main", "public_config"]

logger = logging.getLogger("api_service")


class _DrainingServer(uvicorn.Server):
    """A uvicorn server whose signals start our drain instead of stopping it at once.

    uvicorn's own handling stops accepting immediately and re-raises the signal after
    shutdown; ours fails readiness first, keeps serving for the grace period, and exits 0.
    """

    def __init__(self, config: uvicorn.Config, pipeline: RequestPipeline, grace_s: float) -> None:
        super().__init__(config)
        self._pipeline = pipeline
        self._grace_s = grace_s
        self.stopped_serving_at: float | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            yield
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        if self._pipeline.draining:
            logger.warning("second signal: exiting now")
            self.force_exit = True
            self.should_exit = True
            return
        self._pipeline.draining = True
        logger.info(
            "%s: readiness failed; draining for %.1f s",
            signal.Signals(signum).name,
            self._grace_s,
        )
        asyncio.get_running_loop().call_later(self._grace_s, self._stop_serving)

    def _stop_serving(self) -> None:
        self.stopped_serving_at = time.monotonic()
        self.should_exit = True


class _AdminServer(uvicorn.Server):
    """The admin server: it stops when the main one is done, never on a signal of its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def public_config(settings: ApiSettings, app: ASGIApp) -> uvicorn.Config:
    """The public server's uvicorn configuration."""
    return uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        # The C parser, named rather than left to uvicorn's choice of what is installed; no
        # access log line per request (the request metrics and span say it).
        http="httptools",
        access_log=False,
        server_header=False,
        # uvicorn would otherwise rewrite the peer from X-Forwarded-For for 127.0.0.1
        # (FORWARDED_ALLOW_IPS); the app alone decides the client (api_service.client_address).
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.api_shutdown_timeout_s),
    )


async def _stop_when_refused(publisher: KafkaPublisher, server: _DrainingServer) -> None:
    # Nothing was ever accepted (readiness needs Kafka), so there is nothing to drain.
    await publisher.refused()
    server.should_exit = True


async def serve(settings: ApiSettings) -> int:
    """Run the API and its admin server until a signal ends them; return the exit code.

    2 if Kafka refuses the configured credentials or TLS setup (the message names the setting).
    """
    # Exemplars cost about a third of every histogram and counter update on the hot path, and
    # the Prometheus text on the admin port does not carry them; OTEL_* can still turn them on.
    os.environ.setdefault("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")
    telemetry = configure_telemetry("api-service")
    publisher = KafkaPublisher(
        settings.kafka_bootstrap_servers,
        timeout_s=settings.api_produce_timeout_s,
        buffer_bytes=settings.api_producer_buffer_bytes,
        linger_ms=settings.api_producer_linger_ms,
        compression=settings.api_producer_compression,
        security=settings,
    )
    pipeline = build_pipeline(settings, publisher)
    telemetry.registry.register(pipeline.metrics.histograms)
    app = create_app(settings, pipeline)
    server = _DrainingServer(public_config(settings, app), pipeline, settings.api_drain_grace_s)
    admin = _AdminServer(
        uvicorn.Config(
            create_admin_app(pipeline, telemetry.metrics_text),
            host=settings.api_admin_host,
            port=settings.api_admin_port,
            log_config=None,
            access_log=False,
        )
    )
    await publisher.start()
    refusal_watch = asyncio.create_task(_stop_when_refused(publisher, server))
    admin_task = asyncio.create_task(admin.serve(), name="admin-server")
    logger.info(
        "api-service listening on %s:%d (admin %s:%d), kafka %s",
        settings.api_host,
        settings.api_port,
        settings.api_admin_host,
        settings.api_admin_port,
        settings.kafka_bootstrap_servers,
    )
    # Everything start-up built is in place: keep it out of the collector's walks.
    tune_gc()
    try:
        await server.serve()
    finally:
        refusal_watch.cancel()
        # The shutdown deadline runs from when serving stopped (after the grace period): what
        # the in-flight requests did not use of it is left for the flush.
        deadline_s = settings.api_shutdown_timeout_s
        if server.stopped_serving_at is not None:
            deadline_s -= time.monotonic() - server.stopped_serving_at
        await publisher.stop(timeout_s=max(1.0, deadline_s))
        await pipeline.ingestor.close()
        admin.should_exit = True
        await admin_task
        telemetry.shutdown()
        logger.info("api-service stopped")
    if publisher.refusal is not None:
        print(f"api-service: Kafka refused this client: {publisher.refusal}", file=sys.stderr)
        return 2
    return 0


def main() -> int:
    """Entry point of the ``api-service`` console script."""
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"api-service: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, service="api-service")
    # uvloop, as `uvicorn.run` would pick: serving from our own loop bypasses its choice.
    return uvloop.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
