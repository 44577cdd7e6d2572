"""Admission: whether a request may be served now, and which browser origins may read it.

In order, before the body is read: the concurrency bound (503 ``overloaded``, logged once per
episode), the API key (not on the open tracker routes unless ``API_TRACKER_AUTH_REQUIRED``),
the browser origin (tracker routes), and the rate limit per key, else per client address
(``api_service.client_address``). Each refusal is an exception of ``api_service.errors``.
"""

from __future__ import annotations

import logging
from typing import Final

from api_service.auth import ApiKeys, key_from_headers
from api_service.client_address import ClientAddress
from api_service.errors import (
    OriginNotAllowedError,
    OverloadedError,
    RateLimitedError,
    UnauthorizedError,
)
from api_service.exchange import Answer, Exchange
from api_service.metrics import ApiMetrics
from api_service.ratelimit import RateLimiter
from api_service.settings import ApiSettings

__all__ = ["Admission"]

logger = logging.getLogger(__name__)

PREFLIGHT_ALLOWED_HEADERS: Final = "Content-Type, Authorization, X-API-Key, SP-Anonymous"


class Admission:
    """The API keys, the rate limiter, the allowed origins and the client address rules."""

    def __init__(
        self, settings: ApiSettings, metrics: ApiMetrics, *, limiter: RateLimiter | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.keys = ApiKeys(settings.keys)
        self.limiter = limiter or RateLimiter(
            settings.api_rate_limit_per_s, settings.api_rate_limit_burst
        )
        self.origins = settings.allowed_origins
        self._any_origin = "*" in self.origins
        self.addresses = ClientAddress(
            trust_forwarded_for=settings.api_trust_forwarded_for,
            proxies=settings.trusted_proxies,
            hops=settings.api_trusted_proxy_hops,
        )
        self._shedding = False

    def _shed(self, in_flight: int) -> OverloadedError:
        """The refusal of a request beyond the concurrency bound (logged once per episode)."""
        self.metrics.requests_shed.add(1)
        if not self._shedding:
            self._shedding = True
            logger.warning(
                "%d requests in flight, over API_MAX_CONCURRENT_REQUESTS (%d): answering 503",
                in_flight - 1,
                self.settings.api_max_concurrent_requests,
            )
        return OverloadedError()

    def admit(self, exchange: Exchange, *, open_route: bool, in_flight: int) -> str:
        """The client's name for the rate limit (key fingerprint or IP), or a refusal.

        ``in_flight`` counts the requests in progress, this one included.
        """
        if in_flight > self.settings.api_max_concurrent_requests:
            raise self._shed(in_flight)
        if self._shedding:
            self._shedding = False
            logger.info("back under API_MAX_CONCURRENT_REQUESTS; taking requests again")
        headers = exchange.headers
        needs_key = not self.settings.api_auth_disabled and (
            not open_route or self.settings.api_tracker_auth_required
        )
        presented = key_from_headers(headers)
        identity = self.keys.identify(presented) if presented is not None else None
        if needs_key and identity is None:
            self.metrics.auth_failures.add(1)
            reason = "missing" if presented is None else "invalid"
            logger.info("refused an %s API key", reason, extra={"client": self.client_ip(exchange)})
            raise UnauthorizedError
        if open_route:
            origin = headers.get("origin")
            if origin is not None and not self._any_origin and origin not in self.origins:
                raise OriginNotAllowedError(origin)
        client = identity or self.client_ip(exchange)
        wait = self.limiter.take(client)
        if wait > 0:
            self.metrics.rate_limited.add(1)
            raise RateLimitedError(RateLimiter.retry_after(wait))
        return client

    def _allowed(self, origin: str | None) -> bool:
        return origin is not None and (self._any_origin or origin in self.origins)

    def cors(self, headers: dict[str, str], reply: Answer) -> None:
        """Let an allowed browser origin read ``reply`` (credentials included)."""
        origin = headers.get("origin")
        if origin is not None and self._allowed(origin):
            reply.headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", b"Origin"),
            ]

    def preflight(self, headers: dict[str, str]) -> Answer:
        """The answer to a CORS preflight on a tracker endpoint."""
        origin = headers.get("origin")
        if origin is None or not self._allowed(origin):
            return Answer(403)
        return Answer(
            204,
            headers=[
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
                (b"access-control-allow-headers", PREFLIGHT_ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", b"86400"),
                (b"vary", b"Origin"),
            ],
        )

    def client_ip(self, exchange: Exchange) -> str:
        """The client's address, for the events' ``ip`` and the per-IP rate limit alike."""
        return self.addresses.of(exchange.peer, exchange.forwarded_for)
