"""The admin server (``API_ADMIN_PORT``): ``/metrics`` and the probes, off the public port."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api_service.app import json_response, readiness
from api_service.pipeline import RequestPipeline

__all__ = ["create_admin_app"]

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def create_admin_app(pipeline: RequestPipeline, metrics_text: Callable[[], bytes]) -> Starlette:
    """``/metrics``, ``/healthz`` and ``/readyz``."""

    async def metrics(_request: Request) -> Response:
        return Response(metrics_text(), media_type=PROMETHEUS_TEXT)

    async def healthz(_request: Request) -> Response:
        return json_response(200, {"status": "alive"})

    async def readyz(_request: Request) -> Response:
        return readiness(pipeline)

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ]
    )
