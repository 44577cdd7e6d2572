"""The public application: the ingest routes (``api_service.routes``) in front of a FastAPI app
that serves the docs, the OpenAPI document, the probes and every other path.

``build_pipeline`` takes its publisher from the caller (the real Kafka one from ``main``, a fake
in unit tests), so the app itself never decides where events go.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.utils import get_openapi
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, bundled_repository
from tracking_common.ingest import Ingestor
from tracking_producer import Publisher

from api_service import openapi
from api_service.metrics import UNMATCHED_ROUTE, ApiMetrics
from api_service.pipeline import RequestPipeline
from api_service.routes import (
    PIXEL_PATH,
    REDIRECT_PATH,
    TRACKER_POST_PATH,
    V1_PATH,
    IngestRouter,
    ingest_routes,
)
from api_service.settings import ApiSettings

__all__ = [
    "build_pipeline",
    "create_app",
    "json_response",
    "not_ready_reasons",
    "readiness",
]

logger = logging.getLogger(__name__)
NO_NATIVE_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}
DESCRIPTION = """
Takes tracking events, checks each one, and publishes the valid ones to Kafka.
A 2xx answer means Kafka acknowledged every accepted event. Rejected events are listed in the
answer, by index, with all of their errors, and kept on the bad-events topic with the reasons.

- `POST /v1/events`: one event, or `{"events": [...]}`; JSON, optionally gzip. Needs an API key.
- `POST /com.snowplowanalytics.snowplow/tp2` and `GET /i`: the Snowplow tracker protocol.
- `GET /r/tp2?u=<url>`: a click redirect to a host of `API_REDIRECT_DOMAINS`, recorded as a
  `uri_redirect` event.
"""


def build_pipeline(
    settings: ApiSettings, publisher: Publisher, metrics: ApiMetrics | None = None
) -> RequestPipeline:
    """The request pipeline for ``settings``, publishing through ``publisher``."""
    resolver = settings.resolver(failure_ttl_s=settings.api_retry_after_s)
    envelopes = bundled_repository()
    # Compiled now, at start-up, rather than by the first tracker request on the event loop.
    envelopes.has(PAYLOAD_DATA_SCHEMA)
    ingestor = Ingestor(
        iglu=envelopes,
        resolver=resolver,
        events_topic=settings.events_topic,
        bad_events_topic=settings.bad_events_topic,
        allow_unknown_schemas=settings.api_allow_unknown_schemas,
        max_event_bytes=settings.api_max_event_bytes,
        max_events_per_request=settings.api_max_events_per_request,
        max_json_depth=settings.api_max_json_depth,
    )
    metrics = metrics or ApiMetrics()
    pipeline = RequestPipeline(settings, publisher, ingestor, metrics)
    metrics.sources.buffered_bytes = lambda: publisher.buffered_bytes
    metrics.sources.in_flight = lambda: pipeline.in_flight
    metrics.sources.ready = lambda: not not_ready_reasons(pipeline)
    metrics.sources.kafka_available = lambda: publisher.ready
    metrics.start_at_zero()
    return pipeline


def create_app(settings: ApiSettings, pipeline: RequestPipeline) -> IngestRouter:
    """The public application."""
    app = FastAPI(
        title="Tracking API",
        version="1.0.0",
        description=DESCRIPTION,
        # The ingest routes make their own span and metrics (RequestPipeline.serve); FastAPI's
        # native ones would add spans and a second set of request metrics.
        telemetry=NO_NATIVE_TELEMETRY,
    )
    app.state.pipeline = pipeline

    @app.exception_handler(StarletteHTTPException)
    async def unmatched(request: Request, exc: StarletteHTTPException) -> Response:
        # Only routing raises these: count them under one label, so a scan of random paths
        # cannot grow the metric's series.
        pipeline.metrics.requests.add(1, UNMATCHED_ROUTE, str(exc.status_code))
        return await http_exception_handler(request, exc)

    _declare_ingest_routes(app)

    @app.get("/healthz", tags=["probes"], summary="Alive (a Kafka outage does not fail it)")
    async def healthz() -> Response:
        return json_response(200, {"status": "alive"})

    @app.get("/readyz", tags=["probes"], summary="Ready: started and not shutting down")
    async def readyz() -> Response:
        return readiness(pipeline)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                openapi.component_schemas()
            )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    routes = ingest_routes(pipeline, bench_noop=settings.api_bench_noop_endpoint)
    return IngestRouter(pipeline, routes, app)


def _declare_ingest_routes(app: FastAPI) -> None:
    """The ingest routes as the OpenAPI document describes them.

    :class:`IngestRouter` serves these before FastAPI sees them; declared here, they make the
    document complete and give other methods on their paths a 405.
    """

    async def served_by_the_ingest_router() -> Response:
        raise RuntimeError("the ingest routes are served by api_service.routes.IngestRouter")

    app.post(
        V1_PATH,
        summary="Track one event or a batch",
        openapi_extra={"requestBody": openapi.V1_REQUEST_BODY},
        responses=openapi.RESPONSES,
        tags=["ingest"],
    )(served_by_the_ingest_router)
    app.post(
        TRACKER_POST_PATH,
        summary="Snowplow tracker protocol: a payload_data batch",
        openapi_extra={"requestBody": openapi.TP2_REQUEST_BODY},
        responses=openapi.RESPONSES,
        tags=["snowplow"],
    )(served_by_the_ingest_router)
    app.options(TRACKER_POST_PATH, include_in_schema=False)(served_by_the_ingest_router)
    app.options(PIXEL_PATH, include_in_schema=False)(served_by_the_ingest_router)
    app.get(
        PIXEL_PATH,
        summary="Snowplow tracker protocol: one event in the query string (answers a GIF)",
        responses={
            200: {"description": "A 1x1 GIF", "content": {"image/gif": {}}},
            **{status: openapi.RESPONSES[status] for status in (400, 401, 403, 429, 503)},
        },
        openapi_extra={"parameters": openapi.PIXEL_PARAMETERS},
        tags=["snowplow"],
    )(served_by_the_ingest_router)
    app.get(
        REDIRECT_PATH,
        summary="Click redirect: records a uri_redirect event, then redirects to u",
        responses={
            302: {
                "description": "Redirect to u (the event was stored)",
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
            **openapi.REDIRECT_RESPONSES,
        },
        openapi_extra={"parameters": openapi.REDIRECT_PARAMETERS},
        tags=["snowplow"],
    )(served_by_the_ingest_router)


def json_response(status: int, body: Any) -> Response:
    """A JSON answer of the FastAPI routes, serialised with orjson."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def not_ready_reasons(pipeline: RequestPipeline) -> list[str]:
    """Why the API is not ready (empty: ready); ``/readyz`` and the ``ready`` gauge read this.

    Only the process's own state counts: started (its producer connected once), and not
    shutting down. Kafka's state after that is left out on purpose: an outage every replica
    shares would empty the Service, and clients would get the ingress's bare 502 instead of
    this API's 503 with ``Retry-After`` and CORS headers. The outage shows in
    ``tracking_api_kafka_available`` and ``tracking_api_kafka_errors_total``.
    """
    reasons = []
    if not pipeline.started:
        reasons.append("starting")
    if pipeline.draining:
        reasons.append("shutting_down")
    return reasons


def readiness(pipeline: RequestPipeline) -> Response:
    """200 while ready; 503 with the reasons otherwise."""
    reasons = not_ready_reasons(pipeline)
    if reasons:
        return json_response(503, {"status": "not_ready", "reasons": reasons})
    return json_response(200, {"status": "ready"})
