"""The command line's input: JSON lines from files or standard input, in chunks, numbered.

Each non-blank line is one event; blank lines are skipped (not counted). A line that is not
JSON is rejected with its number, like an invalid event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from tracking_common.errors import ValidationIssue

__all__ = ["STDIN", "Line", "Pacer", "parse", "read_ahead", "read_chunks"]

STDIN: Final = "-"


@dataclass(frozen=True, slots=True)
class Line:
    """One input line: where it comes from (``-`` for stdin), its number and its bytes."""

    source: str
    number: int
    raw: bytes

    @property
    def where(self) -> str:
        """``file:line`` (``line N`` on standard input)."""
        return f"line {self.number}" if self.source == STDIN else f"{self.source}:{self.number}"


def _lines(sources: Iterable[str]) -> Iterator[Line]:
    for source in sources:
        if source == STDIN:
            yield from _numbered(source, _stdin_lines())
        else:
            with Path(source).open("rb") as stream:
                yield from _numbered(source, stream)


def _stdin_lines() -> Iterator[bytes]:
    """Standard input's lines, read with ``os.read``: the reading thread then holds no lock
    of ``sys.stdin``'s buffer, which would make an interrupted interpreter abort at exit."""
    fd = sys.stdin.fileno()
    pending = b""
    while block := os.read(fd, 1 << 16):
        *lines, pending = (pending + block).split(b"\n")
        yield from lines
    if pending:
        yield pending


def _numbered(source: str, stream: Iterable[bytes]) -> Iterator[Line]:
    for number, raw in enumerate(stream, start=1):
        stripped = raw.strip()
        if stripped:
            yield Line(source, number, stripped)


def read_chunks(sources: Iterable[str], size: int) -> Iterator[list[Line]]:
    """The non-blank lines of ``sources`` in order, ``size`` at a time."""
    chunk: list[Line] = []
    for line in _lines(sources):
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def read_ahead(sources: Iterable[str], size: int) -> AsyncIterator[list[Line]]:
    """:func:`read_chunks` on a daemon thread, at most two chunks ahead: the event loop never
    blocks on a slow pipe, and Ctrl-C does not wait for standard input to close. A file that
    cannot be read raises its OSError here."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[list[Line] | BaseException | None] = asyncio.Queue()
    ahead = threading.Semaphore(2)

    def reader() -> None:
        item: list[Line] | BaseException | None = None
        try:
            for chunk in read_chunks(sources, size):
                ahead.acquire()
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
        except Exception as exc:  # handed to the reading coroutine, which raises it
            item = exc
        with contextlib.suppress(RuntimeError):  # the loop closed first (interrupted)
            loop.call_soon_threadsafe(queue.put_nowait, item)

    threading.Thread(target=reader, name="tracking-produce-reader", daemon=True).start()
    while (item := await queue.get()) is not None:
        ahead.release()
        if isinstance(item, BaseException):
            raise item
        yield item


def parse(line: Line) -> Any | ValidationIssue:
    """The line's JSON value, or why it has none."""
    try:
        return orjson.loads(line.raw)
    except orjson.JSONDecodeError as exc:
        return ValidationIssue("", "invalid_json", f"the line is not JSON: {exc}")


class Pacer:
    """Spaces batches so that no more than ``rate`` events a second go out on average."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._sleep = sleep or asyncio.sleep
        self._next: float | None = None

    async def take(self, events: int) -> None:
        """Wait until ``events`` more may go out (at once when the rate is 0: no limit)."""
        if self._rate <= 0 or events <= 0:
            return
        now = self._clock()
        start = now if self._next is None else max(self._next, now)
        if start > now:
            await self._sleep(start - now)
        self._next = start + events / self._rate
