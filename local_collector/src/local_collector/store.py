"""In-memory good and bad events, bounded, with totals that keep counting past the bound."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["EventStore", "GoodFilter"]

Entry = dict[str, Any]


@dataclass(frozen=True, slots=True)
class GoodFilter:
    """The query of ``/micro/good``: every given field must match; then offset, then limit."""

    event_type: str | None = None
    app_id: str | None = None
    eid: str | None = None
    schema: str | None = None
    limit: int | None = None
    offset: int = 0

    def accepts(self, entry: Entry) -> bool:
        """Whether ``entry`` passes the field filters (not offset or limit)."""
        return (
            (self.event_type is None or entry["event_type"] == self.event_type)
            and (self.app_id is None or entry["app_id"] == self.app_id)
            and (self.eid is None or entry["eid"] == self.eid)
            and (self.schema is None or entry["schema"] == self.schema)
        )


class EventStore:
    """Good and bad entries, oldest dropped beyond ``max_events`` each.

    ``good_total`` and ``bad_total`` count everything ever accepted or rejected since the last
    reset, dropped or not. With ``count_only`` nothing but the totals is kept. Thread-safe, so
    a test may read it while the server's loop writes it.
    """

    def __init__(self, *, max_events: int, count_only: bool = False) -> None:
        self._count_only = count_only
        self._good: deque[Entry] = deque(maxlen=max_events)
        self._bad: deque[Entry] = deque(maxlen=max_events)
        self._good_total = 0
        self._bad_total = 0
        self._lock = threading.Lock()

    @property
    def count_only(self) -> bool:
        """Whether entries are dropped and only totals kept."""
        return self._count_only

    @property
    def good_total(self) -> int:
        """Good events since the last reset."""
        return self._good_total

    @property
    def bad_total(self) -> int:
        """Bad requests or events since the last reset."""
        return self._bad_total

    def count_good(self, n: int) -> None:
        """Count ``n`` good events without keeping them."""
        with self._lock:
            self._good_total += n

    def add_good(self, entries: Sequence[Entry]) -> None:
        """Keep good entries (unless count-only) and count them."""
        with self._lock:
            self._good_total += len(entries)
            if not self._count_only:
                self._good.extend(entries)

    def add_bad(self, entry: Entry) -> None:
        """Keep a bad entry (unless count-only) and count it."""
        with self._lock:
            self._bad_total += 1
            if not self._count_only:
                self._bad.append(entry)

    def good(self, query: GoodFilter = GoodFilter()) -> list[Entry]:
        """Kept good entries matching ``query``, oldest first."""
        with self._lock:
            matching = [entry for entry in self._good if query.accepts(entry)]
        end = None if query.limit is None else query.offset + query.limit
        return matching[query.offset : end]

    def bad(self) -> list[Entry]:
        """Kept bad entries, oldest first."""
        with self._lock:
            return list(self._bad)

    def eids(self) -> list[str]:
        """Event ids of the kept good entries, in arrival order (duplicates included)."""
        with self._lock:
            return [entry["eid"] for entry in self._good]

    def reset(self) -> None:
        """Forget every entry and zero the totals."""
        with self._lock:
            self._good.clear()
            self._bad.clear()
            self._good_total = 0
            self._bad_total = 0
