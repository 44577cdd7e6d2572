"""The default :class:`~tracking_common.emitter.ports.HttpClient`: pooled keep-alive aiohttp.

aiohttp's exceptions are translated here into :class:`TransportError` with a ``kind``; nothing
else in the emitter knows aiohttp.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from tracking_common.emitter.errors import TransportError, TransportErrorKind
from tracking_common.emitter.ports import HttpResponse

__all__ = ["AiohttpClient"]


class AiohttpClient:
    """One keep-alive connection pool of ``pool_size`` connections, opened on first use.

    ``connect_timeout_s`` bounds connecting, ``read_timeout_s`` each socket read, and
    ``total_timeout_s`` (optional) the whole request.
    """

    def __init__(
        self,
        *,
        pool_size: int = 4,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        total_timeout_s: float | None = None,
        keepalive_s: float = 30.0,
    ) -> None:
        self._pool_size = pool_size
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout_s, connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, keepalive_timeout=self._keepalive_s
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """POST ``body``; raise TransportError when no answer comes."""
        session = self._open()
        try:
            async with session.post(url, data=body, headers=dict(headers)) as response:
                await response.read()
                return HttpResponse(response.status, response.headers)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _translate(exc) from exc

    async def get(self, url: str, query: str) -> HttpResponse:
        """GET ``url?query``; raise TransportError when no answer comes."""
        session = self._open()
        try:
            async with session.get(f"{url}?{query}") as response:
                await response.read()
                return HttpResponse(response.status, response.headers)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _translate(exc) from exc

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _translate(exc: Exception) -> TransportError:
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return TransportError(TransportErrorKind.TLS, repr(exc))
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return TransportError(TransportErrorKind.DNS, repr(exc))
    if isinstance(exc, TimeoutError):
        return TransportError(TransportErrorKind.TIMEOUT, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError(TransportErrorKind.CONNECT, f"{type(exc).__name__}: {exc}")
    return TransportError(TransportErrorKind.DROPPED, f"{type(exc).__name__}: {exc}")
