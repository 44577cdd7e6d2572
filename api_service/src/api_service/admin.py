"""The admin server (``API_ADMIN_PORT``): ``/metrics`` and the probes, off the public port."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api_service.app import readiness
from api_service.handlers import Ingest, json_response

__all__ = ["create_admin_app"]

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def create_admin_app(ingest: Ingest, metrics_text: Callable[[], bytes]) -> Starlette:
    """``/metrics``, ``/healthz`` and ``/readyz``."""

    async def metrics(_request: Request) -> Response:
        return Response(metrics_text(), media_type=PROMETHEUS_TEXT)

    async def healthz(_request: Request) -> Response:
        return json_response(200, {"status": "alive"})

    async def readyz(_request: Request) -> Response:
        return readiness(ingest)

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ]
    )
