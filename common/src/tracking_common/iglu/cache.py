"""A bounded, least-recently-used cache whose entries expire (pure: the caller gives the time)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """At most ``max_entries`` values; each expires ``ttl_s`` after it was put (None: never).

    Beyond the bound the least recently used entry goes: keys come from clients, and a stream
    of made-up ones must not grow memory, nor push out the schemas in use for long.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("a cache holds at least one entry")
        self._max = max_entries
        self._entries: OrderedDict[K, tuple[float | None, V]] = OrderedDict()

    def get(self, key: K, now: float) -> V | None:
        """The live value for ``key``, or None (an expired entry is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires is not None and now >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, *, ttl_s: float | None, now: float) -> None:
        """Keep ``value`` until ``now + ttl_s``."""
        self._entries[key] = (None if ttl_s is None else now + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
