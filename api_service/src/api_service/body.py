"""Reading request bodies safely: size caps before parsing and after gzip, and a depth limit.

The body is read in chunks and refused with 413 as soon as it passes ``max_bytes`` (or its
``Content-Length`` says it will), so an oversized upload is never buffered whole. A gzip body
is inflated with a cap on the output, so a small bomb cannot expand into memory.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from tracking_common.ingest.depth import nests_deeper

from api_service.errors import RequestRefusedError

__all__ = ["check_depth", "inflate", "parse_json", "read_capped"]


async def read_capped(
    chunks: AsyncIterator[bytes],
    headers: Mapping[str, str],
    max_bytes: int,
    *,
    timeout_s: float | None = None,
) -> bytes:
    """The whole body; RequestRefusedError(413) once it passes ``max_bytes``, or (408) when it
    has not all arrived within ``timeout_s``."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(f"the body is {declared} bytes; the limit is {max_bytes}")
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(f"the body is over the {max_bytes}-byte limit")
                parts.append(chunk)
    except TimeoutError:
        raise RequestRefusedError(
            408,
            "body_timeout",
            f"the body did not arrive within {timeout_s:g} s ({size} bytes received)",
            headers={"connection": "close"},
        ) from None
    return b"".join(parts)


def inflate(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body decoded per ``Content-Encoding`` (identity or gzip), capped at ``max_bytes``."""
    name = (encoding or "identity").strip().lower()
    if name in {"", "identity"}:
        return body
    if name not in {"gzip", "x-gzip"}:
        raise RequestRefusedError(
            415, "unsupported_encoding", f"Content-Encoding {name!r} is not supported (use gzip)"
        )
    # A gzip body may hold several members (RFC 1952); each is inflated in turn, and anything
    # after the last one that is not a member is refused rather than silently dropped.
    parts: list[bytes] = []
    size = 0
    rest = body
    try:
        while rest:
            decompressor = zlib.decompressobj(wbits=31)
            part = decompressor.decompress(rest, max_bytes + 1 - size)
            size += len(part)
            if size > max_bytes or decompressor.unconsumed_tail:
                raise _too_large(f"the body inflates to over the {max_bytes}-byte limit")
            if not decompressor.eof:
                raise RequestRefusedError(400, "invalid_gzip", "the gzip body is truncated")
            parts.append(part)
            rest = decompressor.unused_data
    except zlib.error as exc:
        message = f"the body is not valid gzip: {exc}"
        raise RequestRefusedError(400, "invalid_gzip", message) from exc
    return b"".join(parts)


def parse_json(body: bytes, max_depth: int) -> Any:
    """Parse ``body`` as JSON and check its nesting depth."""
    if not body:
        raise RequestRefusedError(400, "empty_body", "the request body is empty")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        message = f"the body is not valid JSON: {exc}"
        raise RequestRefusedError(400, "invalid_json", message) from exc
    check_depth(document, max_depth)
    return document


def check_depth(document: Any, max_depth: int) -> None:
    """RequestRefusedError(400) if ``document`` nests deeper than ``max_depth`` (iteratively)."""
    if nests_deeper(document, max_depth):
        raise RequestRefusedError(400, "too_deep", f"the JSON nests deeper than {max_depth} levels")


def _too_large(message: str) -> RequestRefusedError:
    return RequestRefusedError(413, "payload_too_large", message)
