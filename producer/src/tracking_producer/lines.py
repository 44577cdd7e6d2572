"""The command line's input: JSON lines from files or standard input, in chunks, numbered.

Each non-blank line is one event; blank lines are skipped (not counted). A line that is not
JSON is rejected with its number, like an invalid event.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from tracking_common.errors import ValidationIssue

__all__ = ["STDIN", "Line", "Pacer", "parse", "read_chunks"]

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
            yield from _numbered(source, sys.stdin.buffer)
        else:
            with Path(source).open("rb") as stream:
                yield from _numbered(source, stream)


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
