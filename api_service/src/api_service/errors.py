"""Refusals: each reason to refuse a whole request is an exception class, and :data:`REFUSALS`
maps each to its HTTP status in one place (:func:`answer` builds the answer from it).

The tree::

    RequestRefusedError                 (this module; ``code`` and ``message``)
    ├── UnauthorizedError               401 unauthorized, WWW-Authenticate
    ├── OriginNotAllowedError           403 origin_not_allowed
    ├── RedirectsDisabledError          404 redirects_disabled
    ├── RedirectNotAllowedError         400 missing_target, redirect_not_allowed
    ├── BodyTimeoutError                408 body_timeout, Connection: close
    ├── BodyTooLargeError               413 payload_too_large
    ├── UnsupportedEncodingError        415 unsupported_encoding
    ├── InvalidGzipError                400 invalid_gzip
    ├── RateLimitedError                429 rate_limited, Retry-After (until a token is free)
    ├── OverloadedError                 503 overloaded, Retry-After
    └── KafkaUnavailableError           503 kafka_unavailable, Retry-After
    IngestError                         (the ingest domain's; ``code`` and ``message``)
    ├── UnreadableBodyError             400, its code (the body is kept as a bad event)
    ├── TooManyEventsError              413 too_many_events
    └── SchemaRegistryUnavailableError  503 schema_registry_unavailable, Retry-After

Every answer is ``{"error": {"code", "message"}}``. A 503 carries ``Retry-After:
API_RETRY_AFTER_S``; a 429 the seconds until the client's rate limit frees a request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from tracking_common.ingest import (
    IngestError,
    SchemaRegistryUnavailableError,
    TooManyEventsError,
    UnreadableBodyError,
)

from api_service.exchange import Answer, json_answer

__all__ = [
    "REFUSALS",
    "BodyTimeoutError",
    "BodyTooLargeError",
    "InvalidGzipError",
    "KafkaUnavailableError",
    "OriginNotAllowedError",
    "OverloadedError",
    "RateLimitedError",
    "RedirectNotAllowedError",
    "RedirectsDisabledError",
    "Refusal",
    "RequestRefusedError",
    "UnauthorizedError",
    "UnsupportedEncodingError",
    "answer",
]


class RequestRefusedError(Exception):
    """The whole request is refused (nothing in it was accepted): the request layer's root."""

    code: str = "refused"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class UnauthorizedError(RequestRefusedError):
    """No API key, or a wrong one."""

    code = "unauthorized"

    def __init__(self) -> None:
        super().__init__(
            "send a valid API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )


class OriginNotAllowedError(RequestRefusedError):
    """A browser origin outside ``API_ALLOWED_ORIGINS`` on a tracker route."""

    code = "origin_not_allowed"

    def __init__(self, origin: str) -> None:
        super().__init__(f"origin {origin} is not allowed")
        self.origin = origin


class RedirectsDisabledError(RequestRefusedError):
    """``/r/tp2`` while ``API_REDIRECT_DOMAINS`` is empty."""

    code = "redirects_disabled"

    def __init__(self) -> None:
        super().__init__("redirects are not enabled")


class RedirectNotAllowedError(RequestRefusedError):
    """A redirect target that is missing or may not be redirected to."""

    code = "redirect_not_allowed"


class BodyTimeoutError(RequestRefusedError):
    """The body did not all arrive within ``API_BODY_TIMEOUT_S``."""

    code = "body_timeout"

    def __init__(self, timeout_s: float, received: int) -> None:
        super().__init__(
            f"the body did not arrive within {timeout_s:g} s ({received} bytes received)"
        )


class BodyTooLargeError(RequestRefusedError):
    """The body, as sent or inflated, is over its limit."""

    code = "payload_too_large"


class UnsupportedEncodingError(RequestRefusedError):
    """A ``Content-Encoding`` other than gzip or identity."""

    code = "unsupported_encoding"

    def __init__(self, encoding: str) -> None:
        super().__init__(f"Content-Encoding {encoding} is not supported (use gzip)")


class InvalidGzipError(RequestRefusedError):
    """A gzip body that does not inflate: garbage, truncated, or trailing bytes."""

    code = "invalid_gzip"


class RateLimitedError(RequestRefusedError):
    """Over the client's rate limit; ``retry_after_s`` until a request is free."""

    code = "rate_limited"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many requests; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class OverloadedError(RequestRefusedError):
    """``API_MAX_CONCURRENT_REQUESTS`` are already in progress."""

    code = "overloaded"

    def __init__(self) -> None:
        super().__init__("too many requests in progress; retry later")


class KafkaUnavailableError(RequestRefusedError):
    """Kafka did not acknowledge (unreachable, too slow, or the producer buffer is full)."""

    code = "kafka_unavailable"

    def __init__(self, kind: str) -> None:
        super().__init__("the events could not be stored; retry later")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Refusal:
    """How one kind of refusal is answered: its status and its extra headers."""

    status: int
    headers: Callable[[Exception, int], dict[str, str]] = lambda _exc, _retry_after_s: {}


def _retry_after(exc: Exception, retry_after_s: int) -> dict[str, str]:
    # The refusal's own wait when it knows one (the rate limit's), else API_RETRY_AFTER_S.
    return {"retry-after": str(getattr(exc, "retry_after_s", retry_after_s))}


REFUSALS: Final[dict[type[Exception], Refusal]] = {
    UnauthorizedError: Refusal(401, lambda _exc, _s: {"www-authenticate": "Bearer"}),
    OriginNotAllowedError: Refusal(403),
    RedirectsDisabledError: Refusal(404),
    RedirectNotAllowedError: Refusal(400),
    BodyTimeoutError: Refusal(408, lambda _exc, _s: {"connection": "close"}),
    BodyTooLargeError: Refusal(413),
    UnsupportedEncodingError: Refusal(415),
    InvalidGzipError: Refusal(400),
    RateLimitedError: Refusal(429, _retry_after),
    OverloadedError: Refusal(503, _retry_after),
    KafkaUnavailableError: Refusal(503, _retry_after),
    UnreadableBodyError: Refusal(400),
    TooManyEventsError: Refusal(413),
    SchemaRegistryUnavailableError: Refusal(503, _retry_after),
}
"""Every refusal class and its answer: the one place a refusal becomes a status."""


def answer(refused: RequestRefusedError | IngestError, retry_after_s: int) -> Answer:
    """The answer to ``refused``: its status from :data:`REFUSALS`, its code and message as JSON.

    ``retry_after_s`` is ``API_RETRY_AFTER_S``, sent with the 503s.
    """
    refusal = next(REFUSALS[kind] for kind in type(refused).__mro__ if kind in REFUSALS)
    headers = [
        (name.encode(), value.encode())
        for name, value in refusal.headers(refused, retry_after_s).items()
    ]
    body = {"error": {"code": refused.code, "message": refused.message}}
    return json_answer(refusal.status, body, headers)
