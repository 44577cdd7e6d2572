"""The request pipeline every ingest route runs in: one span, admission, the answer, metrics.

Order matters and is cheap-first: admission (``api_service.admission``: the concurrency bound,
auth, origin and rate limit) before the body is read; the size cap and deadline while reading
it (``api_service.body``), then inflation; then the ingest domain parses and checks the events,
and the valid and rejected ones are published together. A 2xx is sent only after Kafka
acknowledged them all.

Per request, whatever the number of events: one span, two metric updates for the request
(count and duration), one per outcome of its events, and the produce duration. Every refusal is
an exception, answered by :func:`api_service.errors.answer`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.requests import cookie_parser
from tracking_common.deadlines import Deadlines
from tracking_common.errors import ValidationIssue
from tracking_common.event_ids import new_event_id
from tracking_common.ingest import Batch, IngestError, Ingestor, UnreadableBodyError
from tracking_common.protocol import RequestFacts
from tracking_common.record import Source, now_ms
from tracking_common.tracing import trace_headers
from tracking_producer import Publisher, PublishError

from api_service.admission import Admission
from api_service.body import ClientDisconnectedError, inflate, read_capped
from api_service.errors import (
    KafkaUnavailableError,
    RequestRefusedError,
    answer,
)
from api_service.exchange import (
    Answer,
    Exchange,
    Receive,
    Send,
    json_answer,
    read_headers,
    send_answer,
)
from api_service.metrics import ApiMetrics
from api_service.nuid_cookie import NetworkUserCookie
from api_service.ratelimit import RateLimiter
from api_service.redirects import RedirectTargets
from api_service.settings import ApiSettings

__all__ = ["Handler", "RequestPipeline", "Route"]

logger = logging.getLogger(__name__)

ANONYMOUS_HEADER: Final = "sp-anonymous"
MAX_REQUEST_ID_CHARS: Final = 128  # what the bad-event contract keeps
CLIENT_CLOSED_REQUEST: Final = 499  # nginx's status for a client that hung up

Handler = Callable[[Exchange], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class Route:
    """An ingest route: its template (the metrics' label), handler and access rules."""

    method: str
    path: str
    handler: Handler
    open_route: bool = False  # a tracker route: open unless API_TRACKER_AUTH_REQUIRED, CORS

    @property
    def span_name(self) -> str:
        """The request span's name."""
        return f"{self.method} {self.path}"


class RequestPipeline:
    """What every ingest route shares: admission, body reading, publishing and answering."""

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
        self.admission = Admission(settings, metrics, limiter=limiter)
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
        # Taken from the provider installed by then (main configures telemetry first), so a
        # span does not go through the proxy tracer of a module-level get_tracer.
        self._tracer = trace.get_tracer("api_service")
        self.in_flight = 0
        self._body_deadlines = Deadlines(settings.api_body_timeout_s)
        self._started = False
        self.draining = False

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
        self, route: Route, scope: MutableMapping[str, Any], receive: Receive, send: Send
    ) -> None:
        """Answer one request on ``route``: its span, admission, handler, refusals, metrics."""
        started = time.perf_counter()
        headers = read_headers(scope["headers"])
        # An event id's text (EventIds, 0.15 us) rather than os.urandom (a system call, 0.8).
        request_id = (headers.get("x-request-id") or new_event_id())[:MAX_REQUEST_ID_CHARS]
        exchange = Exchange(scope, receive, route.path, headers, request_id)
        # The caller's W3C context, only looked for when sent: plain trackers pay nothing.
        caller = propagate.extract(headers) if "traceparent" in headers else None
        span = self._tracer.start_span(
            route.span_name,
            context=caller,
            kind=SpanKind.SERVER,
            attributes={"http.route": route.path},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        self.in_flight += 1
        try:
            reply = await self._answer(route, exchange, span)
            span.set_attribute("http.response.status_code", reply.status)
            if reply.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        finally:
            self.in_flight -= 1
            otel_context.detach(token)
            span.end()
        reply.headers.append((b"x-request-id", request_id.encode("latin-1")))
        if route.open_route:
            self.admission.cors(headers, reply)
        await send_answer(send, reply)
        self.metrics.requests.add(1, route.path, str(reply.status))
        self.metrics.request_duration.record(time.perf_counter() - started, route.path)

    async def _answer(self, route: Route, exchange: Exchange, span: trace.Span) -> Answer:
        """The handler's answer, or the answer to its refusal."""
        try:
            exchange.client = self.admission.admit(
                exchange, open_route=route.open_route, in_flight=self.in_flight
            )
            reply = await route.handler(exchange)
        except (RequestRefusedError, IngestError) as refused:
            span.set_attribute("tracking.refused", refused.code)
            return answer(refused, self.settings.api_retry_after_s)
        except ClientDisconnectedError:
            # Nothing was published and no one awaits an answer: counted as 499, not an error.
            span.set_attribute("tracking.refused", "client_disconnected")
            extra = {"request_id": exchange.request_id}
            logger.info("client disconnected mid-request", extra=extra)
            return Answer(CLIENT_CLOSED_REQUEST)
        except Exception as error:
            span.record_exception(error)
            logger.exception(
                "failed to answer a request", extra={"request_id": exchange.request_id}
            )
            return json_answer(
                500, {"error": {"code": "internal_error", "message": "an internal error"}}
            )
        if exchange.set_cookie is not None:
            reply.headers.append((b"set-cookie", exchange.set_cookie.encode("latin-1")))
        return reply

    def request_facts(self, exchange: Exchange) -> RequestFacts:
        """What a tracker request tells of its client, for the ingest domain.

        With ``SP-Anonymous`` no address is taken and no cookie is read or set; otherwise the
        network user id cookie is read (or a new id made) and renewed with the answer.
        """
        headers = exchange.headers
        useragent = headers.get("user-agent", "")[:1000]
        if ANONYMOUS_HEADER in headers:
            trace.get_current_span().set_attribute("tracking.anonymous", True)
            return RequestFacts(useragent=useragent, anonymous=True)
        network_user_id = None
        if self.nuid_cookie is not None:
            cookies = cookie_parser(headers.get("cookie", ""))
            network_user_id, exchange.set_cookie = self.nuid_cookie.identify(
                cookies, headers.get("host", "")
            )
        return RequestFacts(
            ip=self.admission.client_ip(exchange),
            useragent=useragent,
            network_user_id=network_user_id,
        )

    # -- bodies ------------------------------------------------------------------------------

    async def read_body(self, exchange: Exchange) -> bytes:
        """The request's body, read once and inflated, within the size limits and deadline."""
        settings = self.settings
        raw = await read_capped(
            exchange.receive,
            exchange.headers.get("content-length"),
            settings.api_max_body_bytes,
            deadlines=self._body_deadlines,
        )
        encoding = exchange.headers.get("content-encoding")
        if encoding is None:
            return raw
        return inflate(raw, encoding, settings.api_max_inflated_bytes)

    async def keep_unreadable(
        self, body: bytes, error: UnreadableBodyError, source: Source, exchange: Exchange
    ) -> None:
        """Best effort: put an unreadable body on the bad-events topic, so it is not lost."""
        issue = ValidationIssue("", error.code, error.message)
        message = self.ingestor.whole_request(
            body, issue, source=source, now_ms=now_ms(), request_id=exchange.request_id
        )
        self.metrics.events.add(1, source, "rejected")
        self.metrics.events_rejected.add(1, {"source": source, "reason": error.code})
        try:
            await self.publisher.publish([message])
        except PublishError as failure:
            self.metrics.kafka_errors.add(1, {"kind": failure.kind})
            logger.warning(
                "could not keep an unreadable request on the bad-events topic: %s",
                failure,
                extra={"request_id": exchange.request_id},
            )

    # -- publishing -----------------------------------------------------------------------------

    @staticmethod
    def trace() -> list[tuple[str, bytes]]:
        """The request span's context, for the record headers."""
        return trace_headers()

    async def publish(self, batch: Batch, source: Source, exchange: Exchange) -> None:
        """Publish the batch's messages (good and bad), or raise KafkaUnavailableError."""
        started = time.perf_counter()
        try:
            await self.publisher.publish(batch.messages)
        except PublishError as error:
            self.metrics.kafka_errors.add(1, {"kind": error.kind})
            logger.warning(
                "kafka did not acknowledge (%s): %s",
                error.kind,
                error,
                extra={"request_id": exchange.request_id, "route": exchange.route},
            )
            raise KafkaUnavailableError(error.kind) from error
        self.metrics.produce_duration.record(time.perf_counter() - started)
        self.metrics.events.add(batch.accepted, source, "accepted")
        if batch.rejections:
            self._count_rejections(batch, source, exchange)

    def _count_rejections(self, batch: Batch, source: Source, exchange: Exchange) -> None:
        self.metrics.events.add(len(batch.rejections), source, "rejected")
        reasons: dict[str, int] = {}
        for rejection in batch.rejections:
            reason = rejection.issues[0].code if rejection.issues else "rejected"
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            self.metrics.events_rejected.add(count, {"source": source, "reason": reason})
        logger.info(
            "rejected %d of %d events",
            len(batch.rejections),
            len(batch.rejections) + batch.accepted,
            extra={"request_id": exchange.request_id, "route": exchange.route},
        )

    @staticmethod
    def outcome(batch: Batch) -> Answer:
        """200 if every event was accepted, 207 if some were, 400 if none was."""
        document: dict[str, Any] = {
            "accepted": batch.accepted,
            "rejected": len(batch.rejections),
            "event_ids": batch.accepted_ids,
        }
        if not batch.rejections:
            return json_answer(200, document)
        document["errors"] = [rejection.as_dict() for rejection in batch.rejections]
        return json_answer(207 if batch.accepted else 400, document)
