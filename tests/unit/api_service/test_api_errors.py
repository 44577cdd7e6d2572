"""Refusals as types: every refusal class is answered from the one table, with its documented
status, code and headers."""

from __future__ import annotations

import inspect

import pytest
from api_service.errors import (
    REFUSALS,
    BodyTimeoutError,
    BodyTooLargeError,
    InvalidGzipError,
    KafkaUnavailableError,
    OriginNotAllowedError,
    OverloadedError,
    RateLimitedError,
    RedirectNotAllowedError,
    RedirectsDisabledError,
    RequestRefusedError,
    UnauthorizedError,
    UnsupportedEncodingError,
    answer,
)
from tracking_common.ingest import (
    IngestError,
    SchemaRegistryUnavailableError,
    TooManyEventsError,
    UnreadableBodyError,
)

from api_service import errors

RETRY_AFTER_S = 7

# Each refusal, and what docs/api.md ("Answers") says it is answered with.
DOCUMENTED: list[tuple[RequestRefusedError | IngestError, int, str, dict[bytes, bytes]]] = [
    (UnauthorizedError(), 401, "unauthorized", {b"www-authenticate": b"Bearer"}),
    (OriginNotAllowedError("https://evil.example"), 403, "origin_not_allowed", {}),
    (RedirectsDisabledError(), 404, "redirects_disabled", {}),
    (RedirectNotAllowedError("not on an allowed host"), 400, "redirect_not_allowed", {}),
    (RedirectNotAllowedError("no u", code="missing_target"), 400, "missing_target", {}),
    (BodyTimeoutError(30, 14), 408, "body_timeout", {b"connection": b"close"}),
    (BodyTooLargeError("over the limit"), 413, "payload_too_large", {}),
    (UnsupportedEncodingError("br"), 415, "unsupported_encoding", {}),
    (InvalidGzipError("truncated"), 400, "invalid_gzip", {}),
    (RateLimitedError(3), 429, "rate_limited", {b"retry-after": b"3"}),
    (OverloadedError(), 503, "overloaded", {b"retry-after": b"7"}),
    (KafkaUnavailableError("timeout"), 503, "kafka_unavailable", {b"retry-after": b"7"}),
    (UnreadableBodyError("invalid_json", "not JSON"), 400, "invalid_json", {}),
    (UnreadableBodyError("no_events", "no events"), 400, "no_events", {}),
    (TooManyEventsError(501, 500), 413, "too_many_events", {}),
    (
        SchemaRegistryUnavailableError("timed out"),
        503,
        "schema_registry_unavailable",
        {b"retry-after": b"7"},
    ),
]


@pytest.mark.parametrize(
    ("refused", "status", "code", "headers"),
    DOCUMENTED,
    ids=[f"{type(case[0]).__name__}-{case[2]}" for case in DOCUMENTED],
)
def test_each_refusal_is_answered_with_its_documented_status_code_and_headers(
    refused: RequestRefusedError | IngestError,
    status: int,
    code: str,
    headers: dict[bytes, bytes],
) -> None:
    reply = answer(refused, RETRY_AFTER_S)

    assert reply.status == status
    assert refused.code == code
    sent = dict(reply.headers)
    assert sent[b"content-type"] == b"application/json"
    assert {name: sent[name] for name in headers} == headers


def test_every_refusal_class_is_in_the_table_and_documented_here() -> None:
    defined = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, RequestRefusedError | IngestError)
        and cls not in {RequestRefusedError, IngestError}
    } | {UnreadableBodyError, TooManyEventsError, SchemaRegistryUnavailableError}

    assert defined == set(REFUSALS)
    assert defined == {type(case[0]) for case in DOCUMENTED}


def test_messages_name_values_plainly_never_as_python_reprs() -> None:
    assert "'" not in OriginNotAllowedError("https://evil.example").message
    assert "'" not in UnsupportedEncodingError("br").message
