"""One keep-alive HTTP/1.1 connection of :class:`~tracking_common.emitter.http1_client.Http1Client`.

An asyncio ``Protocol``: one request at a time, its answer parsed once it is complete
(``Content-Length``, chunked, or up to the close; 1xx answers skipped). What is not HTTP, a
bad length or chunk, a close before the answer and the answer's deadline end the connection
with a :class:`TransportError` (DROPPED or TIMEOUT).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, cast

from tracking_common.emitter.errors import TransportError, TransportErrorKind
from tracking_common.emitter.ports import HttpResponse

__all__ = ["Http1Connection"]

_HEAD_END: Final = b"\r\n\r\n"
# Heads parsed before, by their bytes: a collector answers every batch with the same head
# (until its Date changes), and splitting it was most of the answer's Python.
_PARSED_HEADS: Final[dict[bytes, tuple[int, Mapping[str, str], bool]]] = {}
_MAX_PARSED_HEADS: Final = 64


class _Answer:
    """A response being read: finds its end (Content-Length, chunked, or the close)."""

    __slots__ = ("close_after", "end", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], close_after: bool) -> None:
        self.status = status
        self.headers = headers
        self.close_after = close_after
        self.end = -1  # where the body ends in the buffer, once known


class Http1Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[HttpResponse] | None = None
        # The answer's deadline, watched by a timer left armed between requests: a timer
        # made and cancelled per request cost 2.1 us on uvloop; one that fires at an old
        # deadline re-arms for the current one.
        self._deadline = 0.0
        self._timeout_s = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport (uvloop's does not subclass asyncio.Transport).
        self.transport = cast("asyncio.Transport", transport)
        # Kept for send: get_running_loop() costs a getpid() system call on Python 3.11.
        self._loop = asyncio.get_running_loop()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(TransportError(TransportErrorKind.DROPPED, f"connection closed: {exc!r}"))

    def eof_received(self) -> bool:
        # A server that closes after its answer may end a body that has no length with EOF.
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            answer = _parse(self._buffer, at_eof=True)
            if isinstance(answer, _Answer) and answer.end >= 0:
                self._finish(answer)
        self.closed = True
        return False

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None:
            # Bytes nobody asked for: the connection can no longer be trusted.
            self.abort()
            return
        answer = _parse(self._buffer, at_eof=False)
        if answer is None:
            return
        if isinstance(answer, TransportError):
            self._fail(answer)
            self.abort()
        elif answer.end >= 0:
            self._finish(answer)

    def send(self, parts: list[bytes], timeout_s: float) -> asyncio.Future[HttpResponse]:
        """Write a request; the future resolves with its answer or a TransportError."""
        loop = self._loop or asyncio.get_running_loop()
        waiter: asyncio.Future[HttpResponse] = loop.create_future()
        if self.closed or self.transport is None or self.transport.is_closing():
            waiter.set_exception(TransportError(TransportErrorKind.DROPPED, "connection closed"))
            return waiter
        self._waiter = waiter
        self._timeout_s = timeout_s
        self._deadline = deadline = loop.time() + timeout_s
        if self._timer is None or self._timer_at > deadline:
            self._arm(loop, deadline)
        self.transport.writelines(parts)
        return waiter

    def abort(self) -> None:
        """Close at once (the next request gets a fresh connection)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _finish(self, answer: _Answer) -> None:
        del self._buffer[: answer.end]
        if answer.close_after or self._buffer:
            self.abort()
        waiter, self._waiter = self._waiter, None  # the timer stays, for the next request
        if waiter is not None and not waiter.done():
            waiter.set_result(HttpResponse(answer.status, answer.headers))

    def _fail(self, error: TransportError) -> None:
        waiter, self._waiter = self._waiter, None
        self._cancel_timer()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(at, self._check_deadline)
        self._timer_at = at

    def _check_deadline(self) -> None:
        """Fail the request in flight past its deadline; re-arm for a later one; else rest."""
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return
        loop = self._loop or asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._arm(loop, self._deadline)
            return
        self._fail(TransportError(TransportErrorKind.TIMEOUT, f"no answer in {self._timeout_s} s"))
        self.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _parse(buffer: bytearray, *, at_eof: bool) -> _Answer | TransportError | None:
    """The answer in ``buffer`` (``end`` < 0 until its body is complete), an error, or None.

    Interim (1xx) answers are skipped.
    """
    start = 0
    while True:
        head_end = buffer.find(_HEAD_END, start)
        if head_end < 0:
            return None
        head = bytes(buffer[start:head_end])
        parsed = _PARSED_HEADS.get(head)
        if parsed is None:
            fresh = _parse_head(head)
            if isinstance(fresh, TransportError):
                return fresh
            if len(_PARSED_HEADS) >= _MAX_PARSED_HEADS:
                _PARSED_HEADS.clear()
            parsed = _PARSED_HEADS[head] = fresh
        body_start = head_end + 4
        status, headers, close_after = parsed
        if status >= 200:
            break
        start = body_start
    answer = _Answer(status, headers, close_after)
    error = _find_body_end(answer, buffer, body_start, at_eof=at_eof)
    return answer if error is None else error


def _parse_head(head: bytes) -> tuple[int, Mapping[str, str], bool] | TransportError:
    """The status, the headers (read-only: heads are shared) and whether to close after."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        return TransportError(TransportErrorKind.DROPPED, f"not an HTTP answer: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().title()] = value.strip()
    connection = headers.get("Connection", "").lower()
    close_after = connection == "close" or (parts[0] == "HTTP/1.0" and connection != "keep-alive")
    return int(parts[1]), MappingProxyType(headers), close_after


def _find_body_end(
    answer: _Answer, buffer: bytearray, body_start: int, *, at_eof: bool
) -> TransportError | None:
    """Set ``answer.end`` once its body is all in ``buffer``; an error if it cannot be framed."""
    headers = answer.headers
    if answer.status in {204, 304}:
        answer.end = body_start
    elif "chunked" in headers.get("Transfer-Encoding", "").lower():
        try:
            answer.end = _chunked_end(buffer, body_start)
        except ValueError:
            return TransportError(TransportErrorKind.DROPPED, "bad chunk size")
    elif (length := headers.get("Content-Length")) is not None:
        if not length.isdigit():
            return TransportError(TransportErrorKind.DROPPED, f"bad Content-Length {length!r}")
        if len(buffer) >= body_start + int(length):
            answer.end = body_start + int(length)
    else:
        answer.close_after = True  # the body runs to the close
        if at_eof:
            answer.end = len(buffer)
    return None


def _chunked_end(buffer: bytearray, position: int) -> int:
    """Where a chunked body starting at ``position`` ends, or -1 if it is not all here."""
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return -1
        size = int(bytes(buffer[position:line_end]).split(b";")[0] or b"0", 16)
        if size == 0:
            trailer_end = buffer.find(_HEAD_END, line_end)
            if buffer[line_end : line_end + 4] == _HEAD_END:
                return line_end + 4
            return -1 if trailer_end < 0 else trailer_end + 4
        position = line_end + 2 + size + 2
        if position > len(buffer):
            return -1
