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
from typing import Final
from urllib.parse import urlsplit

from tracking_common.emitter.errors import TransportError, TransportErrorKind
from tracking_common.emitter.http1_connection import Http1Connection
from tracking_common.emitter.ports import HttpResponse

__all__ = ["Http1Client"]

_USER_AGENT: Final = "tracking-common-emitter"


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a URL's requests go: the socket address, TLS, and the request target."""

    host: str
    port: int
    tls: bool
    host_header: str
    target: str


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
        self._post_heads: dict[str, tuple[dict[str, str], bytes]] = {}
        self._idle: dict[tuple[str, int, bool], deque[Http1Connection]] = {}
        self._slots: dict[tuple[str, int, bool], asyncio.Semaphore] = {}
        self._busy: set[Http1Connection] = set()
        self._closed = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """POST ``body``; raise TransportError when no answer comes."""
        origin = self._origin(url)
        # The head up to Content-Length is the same for every request to a URL with the same
        # headers: written once (a copy of the headers kept to tell), not joined per request.
        cached = self._post_heads.get(url)
        if cached is None or cached[0] != headers:
            extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            head = (
                f"POST {origin.target} HTTP/1.1\r\nHost: {origin.host_header}\r\n"
                f"User-Agent: {_USER_AGENT}\r\n{extra}Content-Length: "
            )
            cached = self._post_heads[url] = (dict(headers), head.encode("latin-1"))
        return await self._request(origin, [b"%b%d\r\n\r\n" % (cached[1], len(body)), body])

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
        connection = self._reuse(key) or await self._connect(origin)
        self._busy.add(connection)
        try:
            response = await connection.send(parts, self._read_timeout_s)
        except BaseException:
            connection.abort()
            raise
        finally:
            self._busy.discard(connection)
        if not connection.closed and not self._closed:
            connection.idle_since = time.monotonic()
            idle = self._idle.get(key)
            if idle is None:
                idle = self._idle[key] = deque()
            idle.append(connection)
        return response

    def _reuse(self, key: tuple[str, int, bool]) -> Http1Connection | None:
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

    async def _connect(self, origin: _Origin) -> Http1Connection:
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if origin.tls:
            tls = self._ssl_context = self._ssl_context or ssl.create_default_context()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await loop.create_connection(
                    Http1Connection,
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
