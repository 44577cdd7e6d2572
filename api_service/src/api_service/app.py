"""The FastAPI application: the ingest routes, the probes, and the benchmark's no-op route.

``create_app`` takes its publisher from the caller (the real Kafka one from ``main``, a fake in
unit tests), so the app itself never decides where events go.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.utils import get_openapi
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, bundled_repository
from tracking_common.iglu.resolver_config import build_resolver, load_resolver_config
from tracking_common.ingest import IngestError, Ingestor
from tracking_common.ingest.decoding import v1_events
from tracking_common.protocol import redirect_payload
from tracking_common.record import now_ms

from api_service import openapi
from api_service.errors import RequestRefusedError
from api_service.handlers import GIF, Ingest, IngestContext, json_response
from api_service.metrics import UNMATCHED_ROUTE, ApiMetrics
from api_service.publisher import Publisher
from api_service.settings import ApiSettings

__all__ = ["REDIRECT_PATH", "TRACKER_POST_PATH", "create_app", "not_ready_reasons", "readiness"]

logger = logging.getLogger(__name__)

TRACKER_POST_PATH = "/com.snowplowanalytics.snowplow/tp2"
REDIRECT_PATH = "/r/tp2"
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


def build_ingest(
    settings: ApiSettings, publisher: Publisher, metrics: ApiMetrics | None = None
) -> Ingest:
    """The shared request machinery for ``settings``."""
    config = settings.iglu_resolver_config
    resolver = build_resolver(
        None if config is None else load_resolver_config(config),
        schema_dir=settings.iglu_schema_dir,
        timeout_s=settings.iglu_resolve_timeout_s,
        failure_ttl_s=settings.api_retry_after_s,
    )
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
    ingest = Ingest(settings, publisher, ingestor, metrics)
    metrics.sources.buffered_bytes = lambda: publisher.buffered_bytes
    metrics.sources.in_flight = lambda: ingest.in_flight
    metrics.sources.ready = lambda: not not_ready_reasons(ingest)
    metrics.sources.kafka_available = lambda: publisher.ready
    metrics.start_at_zero()
    return ingest


def create_app(settings: ApiSettings, ingest: Ingest) -> FastAPI:
    """The public application."""
    app = FastAPI(
        title="Tracking API",
        version="1.0.0",
        description=DESCRIPTION,
        # The routes make their own span and metrics (Ingest.serve); FastAPI's native ones
        # would add three more spans and a second set of request metrics to every request.
        telemetry=NO_NATIVE_TELEMETRY,
    )
    app.state.ingest = ingest

    @app.exception_handler(StarletteHTTPException)
    async def unmatched(request: Request, exc: StarletteHTTPException) -> Response:
        # Only routing raises these (the routes answer through Ingest.serve): count them under
        # one label, so a scan of random paths cannot grow the metric's series.
        ingest.metrics.requests.add(1, {"route": UNMATCHED_ROUTE, "status": str(exc.status_code)})
        return await http_exception_handler(request, exc)

    async def v1(context: IngestContext) -> Response:
        body = await ingest.read_body(context)
        check = ingest.ingestor.v1(
            body, now_ms=now_ms(), trace=ingest.trace(), request_id=context.request_id
        )
        batch = await ingest.checked(check, body, "v1", context)
        await ingest.publish(batch, "v1", context)
        return Ingest.outcome(batch)

    async def tp2(context: IngestContext) -> Response:
        body = await ingest.read_body(context)
        check = ingest.ingestor.tracker(
            body,
            source="tp2",
            now_ms=now_ms(),
            trace=ingest.trace(),
            request_id=context.request_id,
            facts=ingest.request_facts(context),
        )
        batch = await ingest.checked(check, body, "tp2", context)
        await ingest.publish(batch, "tp2", context)
        return Ingest.outcome(batch)

    async def pixel(context: IngestContext) -> Response:
        payload = dict(context.request.query_params)
        if not payload:
            raise RequestRefusedError(400, "no_events", "the query string carries no event")
        batch = await ingest.track([payload], "pixel", context)
        if batch.rejections:
            return Ingest.outcome(batch)
        return Response(GIF, media_type="image/gif", headers={"cache-control": "no-store"})

    async def redirect(context: IngestContext) -> Response:
        query = context.request.query_params
        try:
            target = ingest.redirects.check(query.get("u"))
        except RequestRefusedError as refused:
            logger.info(
                "refused a redirect: %s",
                refused.code,
                extra={"request_id": context.request_id, "route": context.route},
            )
            raise
        # Redirected even when the event was rejected (it is kept on the bad-events topic):
        # the target was checked, and a visitor's click should not fail over tracking fields.
        await ingest.track([redirect_payload(dict(query))], "pixel", context)
        return Response(status_code=302, headers={"location": target, "cache-control": "no-store"})

    @app.post(
        "/v1/events",
        summary="Track one event or a batch",
        openapi_extra={"requestBody": openapi.V1_REQUEST_BODY},
        responses=openapi.RESPONSES,
        tags=["ingest"],
    )
    async def post_v1_events(request: Request) -> Response:
        return await ingest.serve(request, "/v1/events", v1)

    @app.post(
        TRACKER_POST_PATH,
        summary="Snowplow tracker protocol: a payload_data batch",
        openapi_extra={"requestBody": openapi.TP2_REQUEST_BODY},
        responses=openapi.RESPONSES,
        tags=["snowplow"],
    )
    async def post_tp2(request: Request) -> Response:
        return await ingest.serve(request, TRACKER_POST_PATH, tp2, open_route=True)

    @app.options(TRACKER_POST_PATH, include_in_schema=False)
    @app.options("/i", include_in_schema=False)
    async def preflight_tracker(request: Request) -> Response:
        return ingest.preflight(request)

    @app.get(
        "/i",
        summary="Snowplow tracker protocol: one event in the query string (answers a GIF)",
        responses={
            200: {"description": "A 1x1 GIF", "content": {"image/gif": {}}},
            **{status: openapi.RESPONSES[status] for status in (400, 401, 403, 429, 503)},
        },
        openapi_extra={"parameters": openapi.PIXEL_PARAMETERS},
        tags=["snowplow"],
    )
    async def get_pixel(request: Request) -> Response:
        return await ingest.serve(request, "/i", pixel, open_route=True)

    @app.get(
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
    )
    async def get_redirect(request: Request) -> Response:
        return await ingest.serve(request, REDIRECT_PATH, redirect, open_route=True)

    @app.get("/healthz", tags=["probes"], summary="Alive (a Kafka outage does not fail it)")
    async def healthz() -> Response:
        return json_response(200, {"status": "alive"})

    @app.get("/readyz", tags=["probes"], summary="Ready: started and not shutting down")
    async def readyz() -> Response:
        return readiness(ingest)

    if settings.api_bench_noop_endpoint:

        async def noop(context: IngestContext) -> Response:
            body = await ingest.read_body(context)
            try:
                items, _ = v1_events(body, settings.api_max_json_depth)
            except IngestError as error:
                raise ingest.refusal(error) from error
            return json_response(200, {"accepted": len(items), "rejected": 0})

        @app.post("/bench/noop", include_in_schema=False)
        async def bench_noop(request: Request) -> Response:
            return await ingest.serve(request, "/bench/noop", noop)

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
    return app


def not_ready_reasons(ingest: Ingest) -> list[str]:
    """Why the API is not ready (empty: ready); ``/readyz`` and the ``ready`` gauge read this.

    Only the process's own state counts: started (its producer connected once), and not
    shutting down. Kafka's state after that is left out on purpose: an outage every replica
    shares would empty the Service, and clients would get the ingress's bare 502 instead of
    this API's 503 with ``Retry-After`` and CORS headers. The outage shows in
    ``tracking_api_kafka_available`` and ``tracking_api_kafka_errors_total``.
    """
    reasons = []
    if not ingest.started:
        reasons.append("starting")
    if ingest.draining:
        reasons.append("shutting_down")
    return reasons


def readiness(ingest: Ingest) -> Response:
    """200 while ready; 503 with the reasons otherwise."""
    reasons = not_ready_reasons(ingest)
    if reasons:
        return json_response(503, {"status": "not_ready", "reasons": reasons})
    return json_response(200, {"status": "ready"})
