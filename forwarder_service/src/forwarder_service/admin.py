"""The admin port (aiohttp): ``/healthz``, ``/readyz`` and ``/metrics``.

- ``/healthz``: 200 while the process and its event loop are alive.
- ``/readyz``: 200 when the consumer has joined its group and is not shutting down, the
  dead-letter producer is healthy, the pipeline has not failed and the collector is not in a
  setup failure; otherwise 503. The JSON body lists each check.
- ``/metrics``: the Prometheus text exposition of every metric of the process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiohttp import web

__all__ = ["AdminServer"]

logger = logging.getLogger(__name__)

_PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AdminServer:
    """Serves the probes and metrics on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        checks: Callable[[], Mapping[str, bool]],
        metrics_text: Callable[[], bytes],
    ) -> None:
        self._host = host
        self._port = port
        self._checks = checks
        self._metrics_text = metrics_text
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    @property
    def port(self) -> int | None:
        """The port actually bound (after start)."""
        return self._bound_port

    async def start(self) -> None:
        """Bind and serve (idempotent)."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or ()
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
        logger.info("admin server listening on %s:%s", self._host, self._bound_port)

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        checks = dict(self._checks())
        ready = all(checks.values())
        return web.json_response(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status=200 if ready else 503,
        )

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._metrics_text(), headers={"Content-Type": _PROMETHEUS_TYPE})
