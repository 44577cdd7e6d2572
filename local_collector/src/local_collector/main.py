"""``local-collector``: read the settings, configure logging, serve until interrupted."""

from __future__ import annotations

import logging

import uvloop
from aiohttp import web
from tracking_common.observability import configure_logging
from tracking_common.settings import SettingsError

from local_collector.app import build_app
from local_collector.settings import load_settings

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main() -> None:
    """Run the collector on ``COLLECTOR_HOST:COLLECTOR_PORT``; exit 1 naming the bad variable."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise SystemExit(f"local-collector: {exc}") from exc
    configure_logging(settings.log_level, service="local-collector")
    logger.info(
        "collector starting",
        extra={
            "host": settings.collector_host,
            "port": settings.collector_port,
            "max_events": settings.collector_max_events,
            "count_only": settings.collector_count_only,
        },
    )
    app = build_app(
        max_events=settings.collector_max_events, count_only=settings.collector_count_only
    )
    web.run_app(
        app,
        host=settings.collector_host,
        port=settings.collector_port,
        access_log=None,
        print=None,
        shutdown_timeout=2.0,
        # The collector shares the machine with what it measures: uvloop keeps its own cost low.
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
