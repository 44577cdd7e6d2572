"""A TCP relay that a test can cut: the network between one client and Kafka, and its failure.

:class:`TcpRelay` listens on a port of its own and forwards every connection to a target port,
on a thread and event loop of its own. :meth:`TcpRelay.cut` closes every relayed connection and
drops new ones at once (as a partitioned network or a firewall would), until
:meth:`TcpRelay.restore`. The cluster fixture gives each node a listener reached only through
such a relay, so one service can lose Kafka while the others keep it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["TcpRelay"]

T = TypeVar("T")

_CHUNK = 65536


class TcpRelay:
    """Forwards ``127.0.0.1:listen_port`` to ``127.0.0.1:target_port`` until stopped."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self._cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-relay", daemon=True
        )
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        """Listen (returns once the port is bound)."""
        self._thread.start()
        self._server = self._call(self._listen())

    def stop(self) -> None:
        """Close everything and stop the thread."""
        if self._server is not None:
            self._call(self._close(self._server))
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def cut(self) -> None:
        """Close every relayed connection and drop new ones until :meth:`restore`."""
        self._call(self._set_cut(value=True))

    def restore(self) -> None:
        """Relay again."""
        self._call(self._set_cut(value=False))

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._relay, "127.0.0.1", self.listen_port)

    async def _close(self, server: asyncio.Server) -> None:
        server.close()
        await self._set_cut(value=True)

    async def _set_cut(self, *, value: bool) -> None:
        self._cut = value
        if value:
            for writer in list(self._writers):
                writer.close()
            self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            _pump(reader, upstream_writer), _pump(upstream_reader, writer), return_exceptions=True
        )
        for each in (writer, upstream_writer):
            self._writers.discard(each)
            each.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    writer.close()
