"""A lean :class:`~tracking_common.emitter.ports.HttpClient`: HTTP/1.1 on asyncio's transports.

The emitter sends one kind of request: a POST (or a GET) to one collector, on connections it
keeps alive, reading back a status, a few headers and a body it ignores. This client does
that and nothing else: no redirects, cookies, proxies, compression or ``Expect: 100``. Its
cost per request is a fraction of aiohttp's (see docs/emitter.md): the request head is a
format string, the body goes out in one ``writelines``, and the answer is parsed once it is
complete.

Errors are translated into :class:`TransportError` as :class:`AiohttpClient` does: DNS, TLS,
CONNECT (refused, unreachable), TIMEOUT (connecting, or the answer not complete within
``read_timeout_s``), DROPPED (the connection closed or the answer was not HTTP).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

from tracking_common.emitter.errors import TransportError, TransportErrorKind
from tracking_common.emitter.ports import HttpResponse

__all__ = ["Http1Client"]

_HEAD_END: Final = b"\r\n\r\n"
_USER_AGENT: Final = "tracking-common-emitter"


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a URL's requests go: the socket address, TLS, and the request target."""

    host: str
    port: int
    tls: bool
    host_header: str
    target: str


class _Answer:
    """A response being read: finds its end (Content-Length, chunked, or the close)."""

    __slots__ = ("close_after", "end", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], close_after: bool) -> None:
        self.status = status
        self.headers = headers
        self.close_after = close_after
        self.end = -1  # where the body ends in the buffer, once known


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport (uvloop's does not subclass asyncio.Transport).
        self.transport = cast("asyncio.Transport", transport)

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

    def send(
        self, parts: list[bytes], timeout_s: float, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[HttpResponse]:
        """Write a request; the future resolves with its answer or a TransportError."""
        waiter: asyncio.Future[HttpResponse] = loop.create_future()
        if self.closed or self.transport is None or self.transport.is_closing():
            waiter.set_exception(TransportError(TransportErrorKind.DROPPED, "connection closed"))
            return waiter
        self._waiter = waiter
        self._timer = loop.call_later(timeout_s, self._timed_out, timeout_s)
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
        waiter, self._waiter = self._waiter, None
        self._cancel_timer()
        if waiter is not None and not waiter.done():
            waiter.set_result(HttpResponse(answer.status, answer.headers))

    def _fail(self, error: TransportError) -> None:
        waiter, self._waiter = self._waiter, None
        self._cancel_timer()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _timed_out(self, timeout_s: float) -> None:
        self._timer = None
        self._fail(TransportError(TransportErrorKind.TIMEOUT, f"no answer in {timeout_s} s"))
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
        lines = buffer[start:head_end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            return TransportError(TransportErrorKind.DROPPED, f"not an HTTP answer: {lines[0]!r}")
        status = int(parts[1])
        body_start = head_end + 4
        if status >= 200:
            break
        start = body_start
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().title()] = value.strip()
    connection = headers.get("Connection", "").lower()
    close_after = connection == "close" or (parts[0] == "HTTP/1.0" and connection != "keep-alive")
    answer = _Answer(status, headers, close_after)
    error = _find_body_end(answer, buffer, body_start, at_eof=at_eof)
    return answer if error is None else error


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


class Http1Client:
    """Keep-alive HTTP/1.1 with up to ``pool_size`` connections per origin, opened on use.

    ``connect_timeout_s`` bounds connecting (TLS included), ``read_timeout_s`` the wait for
    a complete answer once the request is written, ``total_timeout_s`` (optional) the whole
    request; an idle connection is closed after ``keepalive_s``. ``ssl_context`` is used for
    https URLs (default: the system's trust store). Response header names come as
    ``str.title`` gives them (``Retry-After``).
    """

    def __init__(
        self,
        *,
        pool_size: int = 4,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        total_timeout_s: float | None = None,
        keepalive_s: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._pool_size = pool_size
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._total_timeout_s = total_timeout_s
        self._keepalive_s = keepalive_s
        self._ssl_context = ssl_context
        self._origins: dict[str, _Origin] = {}
        self._idle: dict[tuple[str, int, bool], deque[_Connection]] = {}
        self._slots: dict[tuple[str, int, bool], asyncio.Semaphore] = {}
        self._busy: set[_Connection] = set()
        self._closed = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """POST ``body``; raise TransportError when no answer comes."""
        origin = self._origin(url)
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = (
            f"POST {origin.target} HTTP/1.1\r\nHost: {origin.host_header}\r\n"
            f"User-Agent: {_USER_AGENT}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
        )
        return await self._request(origin, [head.encode("latin-1"), body])

    async def get(self, url: str, query: str) -> HttpResponse:
        """GET ``url?query``; raise TransportError when no answer comes."""
        origin = self._origin(url)
        head = (
            f"GET {origin.target}?{query} HTTP/1.1\r\nHost: {origin.host_header}\r\n"
            f"User-Agent: {_USER_AGENT}\r\n\r\n"
        )
        return await self._request(origin, [head.encode("latin-1")])

    async def close(self) -> None:
        """Close every connection (idempotent); later requests raise RuntimeError."""
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().abort()
        for connection in list(self._busy):
            connection.abort()

    async def _request(self, origin: _Origin, parts: list[bytes]) -> HttpResponse:
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        key = (origin.host, origin.port, origin.tls)
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = asyncio.Semaphore(self._pool_size)
        async with slots:
            if self._total_timeout_s is None:
                return await self._exchange(key, origin, parts)
            try:
                async with asyncio.timeout(self._total_timeout_s):
                    return await self._exchange(key, origin, parts)
            except TimeoutError as exc:
                raise TransportError(
                    TransportErrorKind.TIMEOUT, f"no answer in {self._total_timeout_s} s"
                ) from exc

    async def _exchange(
        self, key: tuple[str, int, bool], origin: _Origin, parts: list[bytes]
    ) -> HttpResponse:
        loop = asyncio.get_running_loop()
        connection = self._reuse(key) or await self._connect(origin, loop)
        self._busy.add(connection)
        try:
            response = await connection.send(parts, self._read_timeout_s, loop)
        except BaseException:
            connection.abort()
            raise
        finally:
            self._busy.discard(connection)
        if not connection.closed and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(key, deque()).append(connection)
        return response

    def _reuse(self, key: tuple[str, int, bool]) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        stale_before = time.monotonic() - self._keepalive_s
        while idle:
            connection = idle.pop()
            if not connection.closed and connection.idle_since >= stale_before:
                return connection
            connection.abort()
        return None

    async def _connect(self, origin: _Origin, loop: asyncio.AbstractEventLoop) -> _Connection:
        tls: ssl.SSLContext | None = None
        if origin.tls:
            tls = self._ssl_context = self._ssl_context or ssl.create_default_context()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await loop.create_connection(
                    _Connection,
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
        except (OSError, TimeoutError) as exc:
            raise _translate(exc) from exc
        return connection

    def _origin(self, url: str) -> _Origin:
        origin = self._origins.get(url)
        if origin is None:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {url!r}")
            tls = parts.scheme == "https"
            port = parts.port or (443 if tls else 80)
            origin = self._origins[url] = _Origin(
                host=parts.hostname,
                port=port,
                tls=tls,
                host_header=parts.netloc.rpartition("@")[2],
                target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            )
        return origin


def _translate(exc: OSError | TimeoutError) -> TransportError:
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return TransportError(TransportErrorKind.TLS, repr(exc))
    if isinstance(exc, socket.gaierror):
        return TransportError(TransportErrorKind.DNS, repr(exc))
    if isinstance(exc, TimeoutError):
        return TransportError(TransportErrorKind.TIMEOUT, f"{type(exc).__name__}: {exc}")
    return TransportError(TransportErrorKind.CONNECT, f"{type(exc).__name__}: {exc}")
