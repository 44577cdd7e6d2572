"""The request pipeline shared by every ingest route.

Order matters and is cheap-first: auth and rate limit before reading the body, the size cap
while reading it, then inflation, parsing and depth; then each item is checked and the valid
and rejected ones are published together. A 2xx is sent only after Kafka acknowledged them all.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from tracking_common.errors import ValidationIssue
from tracking_common.ingest import (
    Batch,
    IngestError,
    Ingestor,
    SchemaRegistryUnavailableError,
    TooManyEventsError,
)
from tracking_common.messages import Message
from tracking_common.protocol import RequestFacts
from tracking_common.record import Source, now_ms
from tracking_common.tracing import trace_headers

from api_service.auth import ApiKeys, key_from_headers
from api_service.body import inflate, read_capped
from api_service.client_address import ClientAddress
from api_service.errors import RequestRefusedError
from api_service.metrics import ApiMetrics
from api_service.nuid_cookie import NetworkUserCookie
from api_service.publisher import Publisher, PublishError
from api_service.ratelimit import RateLimiter
from api_service.redirects import RedirectTargets
from api_service.settings import ApiSettings

__all__ = ["Ingest", "IngestContext"]

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("api_service")

PAYLOAD_DATA_PREFIX: Final = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-"
GIF: Final = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
JSON: Final = "application/json"
ANONYMOUS_HEADER: Final = "sp-anonymous"
PREFLIGHT_ALLOWED_HEADERS: Final = "Content-Type, Authorization, X-API-Key, SP-Anonymous"


@dataclass(slots=True)
class IngestContext:
    """What one request carries through the pipeline."""

    request: Request
    route: str
    request_id: str
    client: str  # key fingerprint, else the client IP
    set_cookie: str | None = None  # the network user id cookie to send with a success


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer, serialised with orjson."""
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def _caller_context(request: Request) -> Context | None:
    """The caller's W3C trace context, if it sent one: the request span joins its trace.

    Only looked for when a ``traceparent`` header is present, so plain trackers pay nothing.
    """
    if "traceparent" not in request.headers:
        return None
    return propagate.extract(request.headers)


class Ingest:
    """The routes' shared machinery: auth, limits, parsing, checking and publishing."""

    def __init__(
        self,
        settings: ApiSettings,
        publisher: Publisher,
        ingestor: Ingestor,
        metrics: ApiMetrics,
        *,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.ingestor = ingestor
        self.metrics = metrics
        self.keys = ApiKeys(settings.keys)
        self.limiter = limiter or RateLimiter(
            settings.api_rate_limit_per_s, settings.api_rate_limit_burst
        )
        self.origins = settings.allowed_origins
        self.addresses = ClientAddress(
            trust_forwarded_for=settings.api_trust_forwarded_for,
            proxies=settings.trusted_proxies,
            hops=settings.api_trusted_proxy_hops,
        )
        self.nuid_cookie = (
            NetworkUserCookie(
                name=settings.api_nuid_cookie_name,
                domains=settings.nuid_cookie_domains,
                max_age_days=settings.api_nuid_cookie_max_age_days,
                secure=settings.api_nuid_cookie_secure,
            )
            if settings.api_nuid_cookie_name
            else None
        )
        self.redirects = RedirectTargets(settings.redirect_domains)
        self.in_flight = 0
        self._started = False
        self.draining = False
        self._shedding = False

    @property
    def started(self) -> bool:
        """True from the publisher's first connection on, whatever Kafka does afterwards.

        A new instance takes no traffic before it can produce; a running one stays in the
        Service through an outage all replicas share (see ``app.not_ready_reasons``).
        """
        if not self._started and self.publisher.ready:
            self._started = True
        return self._started

    # -- the shape of every route ---------------------------------------------------------------

    async def serve(
        self,
        request: Request,
        route: str,
        handler: Callable[[IngestContext], Awaitable[Response]],
        *,
        open_route: bool = False,
    ) -> Response:
        """Run ``handler`` inside a span, with auth, rate limit, metrics and error answers."""
        started = time.perf_counter()
        self.in_flight += 1
        # Cut to what the bad-event contract keeps: it also keys bad events and tags log lines.
        request_id = (request.headers.get("x-request-id") or uuid.uuid4().hex)[:128]
        with tracer.start_as_current_span(
            f"{request.method} {route}", context=_caller_context(request), kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.route", route)
            try:
                if self.in_flight > self.settings.api_max_concurrent_requests:
                    raise self._shed()
                if self._shedding:
                    self._shedding = False
                    logger.info("back under API_MAX_CONCURRENT_REQUESTS; taking requests again")
                client = self._admit(request, open_route=open_route)
                context = IngestContext(request, route, request_id, client)
                response = await handler(context)
                if context.set_cookie is not None:
                    response.headers.append("set-cookie", context.set_cookie)
            except RequestRefusedError as refused:
                response = json_response(refused.status, refused.body(), refused.headers)
                span.set_attribute("tracking.refused", refused.code)
            except ClientDisconnect:
                # The client hung up mid-body: nothing was published and no one awaits an
                # answer. Counted as 499 (nginx's "client closed request"), not a server error.
                response = Response(status_code=499)
                span.set_attribute("tracking.refused", "client_disconnected")
                logger.info("client disconnected mid-request", extra={"request_id": request_id})
            finally:
                self.in_flight -= 1
            status = response.status_code
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        response.headers["x-request-id"] = request_id
        if open_route:
            self._cors(request, response)
        attributes = {"route": route, "status": str(status)}
        self.metrics.requests.add(1, attributes)
        self.metrics.request_duration.record(time.perf_counter() - started, {"route": route})
        return response

    def _shed(self) -> RequestRefusedError:
        """The 503 for a request beyond the concurrency bound (logged once per episode)."""
        self.metrics.requests_shed.add(1)
        if not self._shedding:
            self._shedding = True
            logger.warning(
                "%d requests in flight, over API_MAX_CONCURRENT_REQUESTS (%d): answering 503",
                self.in_flight - 1,
                self.settings.api_max_concurrent_requests,
            )
        return RequestRefusedError(
            503,
            "overloaded",
            "too many requests in progress; retry later",
            headers={"retry-after": str(self.settings.api_retry_after_s)},
        )

    def _admit(self, request: Request, *, open_route: bool) -> str:
        headers = request.headers
        needs_key = not self.settings.api_auth_disabled and (
            not open_route or self.settings.api_tracker_auth_required
        )
        presented = key_from_headers(headers)
        identity = self.keys.identify(presented) if presented is not None else None
        if needs_key and identity is None:
            self.metrics.auth_failures.add(1)
            reason = "missing" if presented is None else "invalid"
            logger.info("refused an %s API key", reason, extra={"client": self.client_ip(request)})
            raise RequestRefusedError(
                401,
                "unauthorized",
                "send a valid API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers={"www-authenticate": "Bearer"},
            )
        if open_route:
            origin = headers.get("origin")
            if origin is not None and "*" not in self.origins and origin not in self.origins:
                message = f"origin {origin!r} is not allowed"
                raise RequestRefusedError(403, "origin_not_allowed", message)
        client = identity or self.client_ip(request)
        wait = self.limiter.take(client)
        if wait > 0:
            self.metrics.rate_limited.add(1)
            retry_after = str(RateLimiter.retry_after(wait))
            raise RequestRefusedError(
                429,
                "rate_limited",
                f"too many requests; retry after {retry_after} s",
                headers={"retry-after": retry_after},
            )
        return client

    def _cors(self, request: Request, response: Response) -> None:
        origin = request.headers.get("origin")
        if origin is not None and ("*" in self.origins or origin in self.origins):
            response.headers["access-control-allow-origin"] = origin
            response.headers["access-control-allow-credentials"] = "true"
            response.headers["vary"] = "Origin"

    def preflight(self, request: Request) -> Response:
        """The answer to a CORS preflight on a tracker endpoint."""
        origin = request.headers.get("origin")
        if origin is None or ("*" not in self.origins and origin not in self.origins):
            return Response(status_code=403)
        return Response(
            status_code=204,
            headers={
                "access-control-allow-origin": origin,
                "access-control-allow-credentials": "true",
                "access-control-allow-methods": "POST, GET, OPTIONS",
                "access-control-allow-headers": PREFLIGHT_ALLOWED_HEADERS,
                "access-control-max-age": "86400",
                "vary": "Origin",
            },
        )

    def request_facts(self, context: IngestContext) -> RequestFacts:
        """What a tracker request tells of its client, for :func:`add_request_facts`.

        With ``SP-Anonymous`` no address is taken and no cookie is read or set; otherwise the
        network user id cookie is read (or a new id made) and renewed with the answer.
        """
        request = context.request
        useragent = request.headers.get("user-agent", "")[:1000]
        if ANONYMOUS_HEADER in request.headers:
            trace.get_current_span().set_attribute("tracking.anonymous", True)
            return RequestFacts(useragent=useragent, anonymous=True)
        network_user_id = None
        if self.nuid_cookie is not None:
            network_user_id, context.set_cookie = self.nuid_cookie.identify(request)
        return RequestFacts(
            ip=self.client_ip(request), useragent=useragent, network_user_id=network_user_id
        )

    def client_ip(self, request: Request) -> str:
        """The client's address, for the events' ``ip`` and the per-IP rate limit alike."""
        return self.addresses.of(request.client.host if request.client else None, request.headers)

    # -- bodies ------------------------------------------------------------------------------

    async def read_body(self, context: IngestContext) -> bytes:
        """The request's body, inflated, within the size limits."""
        request = context.request
        settings = self.settings
        raw = await read_capped(
            request.stream(),
            request.headers,
            settings.api_max_body_bytes,
            timeout_s=settings.api_body_timeout_s,
        )
        return inflate(
            raw, request.headers.get("content-encoding"), settings.api_max_inflated_bytes
        )

    def refusal(self, error: IngestError) -> RequestRefusedError:
        """The answer to a request the ingest domain refused whole."""
        if isinstance(error, TooManyEventsError):
            return RequestRefusedError(413, error.code, error.message)
        if isinstance(error, SchemaRegistryUnavailableError):
            # Through no fault of the events: the client retries (nothing was published).
            retry_after = {"retry-after": str(self.settings.api_retry_after_s)}
            return RequestRefusedError(503, error.code, error.message, headers=retry_after)
        return RequestRefusedError(400, error.code, error.message)

    async def checked(
        self, check: Awaitable[Batch], body: bytes, source: Source, context: IngestContext
    ) -> Batch:
        """The batch ``check`` builds, or its refusal; an unreadable body is kept."""
        try:
            return await check
        except IngestError as error:
            refused = self.refusal(error)
            if refused.status == 400 and error.code != "no_events":
                await self.keep_unreadable(body, refused, source, context)
            raise refused from error

    async def keep_unreadable(
        self, raw: bytes, refused: RequestRefusedError, source: Source, context: IngestContext
    ) -> None:
        """Best effort: put an unreadable body on the bad-events topic, so it is not lost."""
        issue = ValidationIssue("", refused.code, refused.message)
        message = self.ingestor.whole_request(
            raw, issue, source=source, now_ms=now_ms(), request_id=context.request_id
        )
        self.metrics.events.add(1, {"source": source, "outcome": "rejected"})
        self.metrics.events_rejected.add(1, {"source": source, "reason": refused.code})
        try:
            await self.publisher.publish([message])
        except PublishError as error:
            self.metrics.kafka_errors.add(1, {"kind": error.kind})
            logger.warning(
                "could not keep an unreadable request on the bad-events topic: %s",
                error,
                extra={"request_id": context.request_id},
            )

    # -- checking and publishing ---------------------------------------------------------------

    def trace(self) -> list[tuple[str, bytes]]:
        """The current span's context, for the record headers."""
        return trace_headers()

    async def track(
        self, payloads: Sequence[Mapping[str, str]], source: Source, context: IngestContext
    ) -> Batch:
        """Check query-string payloads with the request's facts and publish the batch."""
        check = self.ingestor.tracker_payloads(
            [dict(payload) for payload in payloads],
            source=source,
            now_ms=now_ms(),
            trace=self.trace(),
            request_id=context.request_id,
            facts=self.request_facts(context),
        )
        batch = await self.checked(check, b"", source, context)
        await self.publish(batch, source, context)
        return batch

    async def publish(self, batch: Batch, source: Source, context: IngestContext) -> None:
        """Publish the batch's messages (good and bad) or raise RequestRefusedError(503)."""
        await self.publish_messages(batch.messages, context)
        self.metrics.events.add(batch.accepted, {"source": source, "outcome": "accepted"})
        if batch.rejections:
            self.metrics.events.add(
                len(batch.rejections), {"source": source, "outcome": "rejected"}
            )
            for rejection in batch.rejections:
                reason = rejection.issues[0].code if rejection.issues else "rejected"
                self.metrics.events_rejected.add(1, {"source": source, "reason": reason})
            logger.info(
                "rejected %d of %d events",
                len(batch.rejections),
                len(batch.rejections) + batch.accepted,
                extra={"request_id": context.request_id, "route": context.route},
            )

    async def publish_messages(self, messages: Sequence[Message], context: IngestContext) -> None:
        """Publish or raise RequestRefusedError(503) with Retry-After."""
        started = time.perf_counter()
        try:
            await self.publisher.publish(messages)
        except PublishError as error:
            self.metrics.kafka_errors.add(1, {"kind": error.kind})
            logger.warning(
                "kafka did not acknowledge (%s): %s",
                error.kind,
                error,
                extra={"request_id": context.request_id, "route": context.route},
            )
            retry_after = str(self.settings.api_retry_after_s)
            raise RequestRefusedError(
                503,
                "kafka_unavailable",
                "the events could not be stored; retry later",
                headers={"retry-after": retry_after},
            ) from error
        self.metrics.produce_duration.record(time.perf_counter() - started)

    @staticmethod
    def outcome(batch: Batch) -> Response:
        """200 if every event was accepted, 207 if some were, 400 if none was."""
        if not batch.rejections:
            body: dict[str, Any] = {
                "accepted": batch.accepted,
                "rejected": 0,
                "event_ids": batch.accepted_ids,
            }
            return json_response(200, body)
        body = {
            "accepted": batch.accepted,
            "rejected": len(batch.rejections),
            "event_ids": batch.accepted_ids,
            "errors": [rejection.as_dict() for rejection in batch.rejections],
        }
        return json_response(207 if batch.accepted else 400, body)
