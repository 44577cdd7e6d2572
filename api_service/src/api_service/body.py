"""Reading request bodies safely: a size cap while reading, a deadline, and a capped gzip
inflation.

The body is read from the ASGI ``receive`` channel once, into bytes, and refused with 413 as
soon as it passes ``max_bytes`` (or its ``Content-Length`` says it will), so an oversized upload
is never buffered whole. A gzip body is inflated with a cap on the output, so a small bomb
cannot expand into memory. Parsing is the ingest domain's (``tracking_common.ingest``).
"""

from __future__ import annotations

import asyncio
import zlib

from tracking_common.deadlines import Deadlines

from api_service.errors import (
    BodyTimeoutError,
    BodyTooLargeError,
    InvalidGzipError,
    UnsupportedEncodingError,
)
from api_service.exchange import Receive

__all__ = ["ClientDisconnectedError", "inflate", "read_capped"]


class ClientDisconnectedError(Exception):
    """The client hung up before its body had all arrived (answered 499, nothing published)."""


async def read_capped(
    receive: Receive,
    content_length: str | None,
    max_bytes: int,
    *,
    deadlines: Deadlines | None = None,
) -> bytes:
    """The whole body; BodyTooLargeError once it passes ``max_bytes``, BodyTimeoutError when it
    has not all arrived within the ``deadlines``' length, ClientDisconnectedError if the client
    hangs up."""
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise BodyTooLargeError(f"the body is {content_length} bytes; the limit is {max_bytes}")
    parts: list[bytes] = []
    size = 0
    reading = None if deadlines is None else _Reading(deadlines)
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnectedError
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLargeError(f"the body is over the {max_bytes}-byte limit")
            parts.append(chunk)
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        if reading is None or not reading.expired():
            raise
        raise BodyTimeoutError(reading.timeout_s, size) from None
    finally:
        if reading is not None:
            reading.done()
    return parts[0] if len(parts) == 1 else b"".join(parts)


class _Reading:
    """The current task, cancelled when its read passes its deadline (one of ``deadlines``,
    which share a timer: what ``asyncio.timeout`` does, without a timer per request)."""

    __slots__ = ("_deadlines", "_expired", "_task")

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines
        self._expired = False
        # The deadlines' loop, if it is the running one, rather than a look-up of the running
        # loop, which makes a system call on Python 3.11 (getpid, 0.2 us).
        loop = deadlines.loop
        task = None if loop is None else asyncio.current_task(loop)
        self._task = task or asyncio.current_task()
        if self._task is not None:
            deadlines.start(self, self._expire, self._task.get_loop())

    @property
    def timeout_s(self) -> float:
        """The deadline's length."""
        return self._deadlines.timeout_s

    def _expire(self) -> None:
        self._expired = True
        assert self._task is not None  # noqa: S101 - no deadline is started without a task
        self._task.cancel()

    def expired(self) -> bool:
        """Whether the deadline passed; if so, the cancellation it made is taken back."""
        if self._expired and self._task is not None:
            self._task.uncancel()
        return self._expired

    def done(self) -> None:
        """Forget the deadline (the body is read, or reading failed)."""
        self._deadlines.stop(self)


def inflate(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body decoded per ``Content-Encoding`` (identity or gzip), capped at ``max_bytes``."""
    name = (encoding or "identity").strip().lower()
    if name in {"", "identity"}:
        return body
    if name not in {"gzip", "x-gzip"}:
        raise UnsupportedEncodingError(name)
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
                raise BodyTooLargeError(f"the body inflates to over the {max_bytes}-byte limit")
            if not decompressor.eof:
                raise InvalidGzipError("the gzip body is truncated")
            parts.append(part)
            rest = decompressor.unused_data
    except zlib.error as exc:
        message = f"the body is not valid gzip: {exc}"
        raise InvalidGzipError(message) from exc
    return b"".join(parts)
