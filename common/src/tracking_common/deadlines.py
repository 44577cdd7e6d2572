"""Deadlines of one length for many waiters, checked by one timer.

``asyncio.timeout`` and ``asyncio.wait(timeout=...)`` arm a timer per waiter: on uvloop 2.2 us
to arm and cancel (a libuv timer handle each), paid by every request that reads a body or waits
for Kafka. Here a deadline is a dict entry, and one timer, armed while any deadline is pending,
expires those past their time, up to ``resolution_s`` late. All deadlines of one
:class:`Deadlines` have the same length, so the dict's insertion order is their order: a turn
of the timer stops at the first that is not due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

__all__ = ["Deadlines"]


class Deadlines:
    """``timeout_s`` from :meth:`start`, ``on_expiry`` is called, unless :meth:`stop` came first."""

    def __init__(self, timeout_s: float, *, resolution_s: float = 0.05) -> None:
        if timeout_s <= 0 or resolution_s <= 0:
            raise ValueError("timeout_s and resolution_s must be positive")
        self.timeout_s = timeout_s
        self._resolution_s = resolution_s
        self._pending: dict[Hashable, tuple[float, Callable[[], object]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop of the last :meth:`start` (None before the first)."""
        return self._loop

    @property
    def pending(self) -> int:
        """Deadlines started and neither stopped nor expired."""
        return len(self._pending)

    def start(
        self,
        key: Hashable,
        on_expiry: Callable[[], object],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """Call ``on_expiry`` (on the running loop) ``timeout_s`` from now, unless stopped.

        ``loop``: the running loop, from a caller that holds it. On Python 3.11,
        ``asyncio.get_running_loop`` makes a system call (``getpid``, 0.2 us here).
        """
        if loop is None:
            loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a first start, or a new loop: the old one's are moot
            self._pending.clear()
            self._loop, self._timer = loop, None
        self._pending[key] = (loop.time() + self.timeout_s, on_expiry)
        if self._timer is None:
            self._timer = loop.call_later(self._resolution_s, self._expire, loop)

    def stop(self, key: Hashable) -> None:
        """Forget ``key``'s deadline (nothing happens if it expired or was never started)."""
        self._pending.pop(key, None)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return
        self._timer = None
        now = loop.time()
        due: list[Hashable] = []
        for key, (at, _) in self._pending.items():
            if at > now:
                break
            due.append(key)
        for key in due:
            _, on_expiry = self._pending.pop(key)
            on_expiry()
        if self._pending:
            self._timer = loop.call_later(self._resolution_s, self._expire, loop)
