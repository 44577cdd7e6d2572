"""The ingest routes' handlers, and the router that serves them in front of the FastAPI app.

The ingest routes run on every tracked event, so they are served straight from ASGI
(:class:`IngestRouter`): one dict look-up picks the route, and :class:`RequestPipeline.serve`
does the rest. FastAPI's routing, request object, dependency solving and middleware stack cost
more than everything else on a request together (docs/api.md, "The request layer"). Every other
request (the docs, ``/openapi.json``, the probes, unknown paths) goes on to the FastAPI app,
which also declares the ingest routes, so the OpenAPI document describes them and other
methods on their paths get 405.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, Final

from starlette.types import ASGIApp
from tracking_common.ingest import Batch, UnreadableBodyError
from tracking_common.protocol import redirect_payload
from tracking_common.record import Source, now_ms

from api_service.errors import RedirectNotAllowedError, RedirectsDisabledError
from api_service.exchange import (
    Answer,
    Exchange,
    Receive,
    Send,
    json_answer,
    read_headers,
    send_answer,
)
from api_service.pipeline import RequestPipeline, Route

__all__ = [
    "BENCH_NOOP_PATH",
    "GIF",
    "PIXEL_PATH",
    "REDIRECT_PATH",
    "TRACKER_POST_PATH",
    "V1_PATH",
    "IngestRouter",
    "ingest_routes",
]

logger = logging.getLogger(__name__)

V1_PATH: Final = "/v1/events"
TRACKER_POST_PATH: Final = "/com.snowplowanalytics.snowplow/tp2"
PIXEL_PATH: Final = "/i"
REDIRECT_PATH: Final = "/r/tp2"
BENCH_NOOP_PATH: Final = "/bench/noop"
GIF: Final = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_STORE: Final = (b"cache-control", b"no-store")


def ingest_routes(pipeline: RequestPipeline, *, bench_noop: bool) -> list[Route]:
    """The ingest routes and their handlers, over ``pipeline``."""

    async def v1(exchange: Exchange) -> Answer:
        body = await pipeline.read_body(exchange)
        try:
            batch = await pipeline.ingestor.v1(
                body, now_ms=now_ms(), trace=pipeline.trace(), request_id=exchange.request_id
            )
        except UnreadableBodyError as unreadable:
            await _keep(pipeline, body, unreadable, "v1", exchange)
            raise
        await pipeline.publish(batch, "v1", exchange)
        return pipeline.outcome(batch)

    async def tp2(exchange: Exchange) -> Answer:
        body = await pipeline.read_body(exchange)
        try:
            batch = await pipeline.ingestor.tracker(
                body,
                source="tp2",
                now_ms=now_ms(),
                trace=pipeline.trace(),
                request_id=exchange.request_id,
                facts=pipeline.request_facts(exchange),
            )
        except UnreadableBodyError as unreadable:
            await _keep(pipeline, body, unreadable, "tp2", exchange)
            raise
        await pipeline.publish(batch, "tp2", exchange)
        return pipeline.outcome(batch)

    async def track_query(payload: dict[str, str], exchange: Exchange) -> Batch:
        batch = await pipeline.ingestor.tracker_payloads(
            [payload],
            source="pixel",
            now_ms=now_ms(),
            trace=pipeline.trace(),
            request_id=exchange.request_id,
            facts=pipeline.request_facts(exchange),
        )
        await pipeline.publish(batch, "pixel", exchange)
        return batch

    async def pixel(exchange: Exchange) -> Answer:
        payload = exchange.query()
        if not payload:
            raise UnreadableBodyError("no_events", "the query string carries no event")
        batch = await track_query(payload, exchange)
        if batch.rejections:
            return pipeline.outcome(batch)
        return Answer(200, GIF, [(b"content-type", b"image/gif"), NO_STORE])

    async def redirect(exchange: Exchange) -> Answer:
        query = exchange.query()
        try:
            target = pipeline.redirects.check(query.get("u"))
        except (RedirectNotAllowedError, RedirectsDisabledError) as refused:
            logger.info(
                "refused a redirect: %s",
                refused.code,
                extra={"request_id": exchange.request_id, "route": exchange.route},
            )
            raise
        # Redirected even when the event was rejected (it is kept on the bad-events topic):
        # the target was checked, and a visitor's click should not fail over tracking fields.
        await track_query(redirect_payload(query), exchange)
        return Answer(302, headers=[(b"location", target.encode("latin-1")), NO_STORE])

    async def noop(exchange: Exchange) -> Answer:
        # The request layer alone: admission and the body as /v1/events, nothing checked.
        await pipeline.read_body(exchange)
        return json_answer(200, {"accepted": 1, "rejected": 0})

    routes = [
        Route("POST", V1_PATH, v1),
        Route("POST", TRACKER_POST_PATH, tp2, open_route=True),
        Route("GET", PIXEL_PATH, pixel, open_route=True),
        Route("GET", REDIRECT_PATH, redirect, open_route=True),
    ]
    if bench_noop:
        routes.append(Route("POST", BENCH_NOOP_PATH, noop))
    return routes


async def _keep(
    pipeline: RequestPipeline,
    body: bytes,
    unreadable: UnreadableBodyError,
    source: Source,
    exchange: Exchange,
) -> None:
    # A request with no events has nothing to keep; any other unreadable body is kept.
    if unreadable.code != "no_events":
        await pipeline.keep_unreadable(body, unreadable, source, exchange)


PREFLIGHT_PATHS: Final = frozenset({TRACKER_POST_PATH, PIXEL_PATH})
"""The tracker routes browsers send a CORS preflight to (answered without admission)."""


class IngestRouter:
    """An ASGI app: the ingest routes served through the pipeline, all else by ``fallback``."""

    def __init__(self, pipeline: RequestPipeline, routes: list[Route], fallback: ASGIApp) -> None:
        self.pipeline = pipeline
        self.fallback = fallback
        self._routes = {(route.method, route.path): route for route in routes}

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Serve ``scope``."""
        if scope["type"] == "http":
            route = self._routes.get((scope["method"], scope["path"]))
            if route is not None:
                await self.pipeline.serve(route, scope, receive, send)
                return
            if scope["method"] == "OPTIONS" and scope["path"] in PREFLIGHT_PATHS:
                headers = read_headers(scope["headers"])
                await send_answer(send, self.pipeline.admission.preflight(headers))
                return
        await self.fallback(scope, receive, send)
