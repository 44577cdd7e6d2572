"""The partition a Java client would choose for a key, with the hash of recurring keys kept."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.partitioner import DefaultPartitioner, murmur2

__all__ = ["CachedPartitioner"]


class CachedPartitioner:
    """aiokafka's :class:`DefaultPartitioner` (Java-compatible murmur2), with the hash cached.

    aiokafka's murmur2 is pure Python (tens of microseconds a key) and runs for every message.
    A user's key recurs, so its hash is kept, in a dict of at most ``max_keys`` entries (about
    150 bytes each, key included: 9.5 MB when full), cleared when full. A key that never recurs
    (an event's or a request's own id) is hashed and forgotten: kept, each anonymous event grew
    the API by those 150 bytes until the dict was full (``docs/operations.md``, Soak).
    Same partition as the default for every key.
    """

    def __init__(self, max_keys: int = 65_536) -> None:
        self._max_keys = max_keys
        self._hashes: dict[bytes, int] = {}
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        """The partition for ``key`` (random among ``available`` when there is no key)."""
        if key is None:
            return int(self._default(key, all_partitions, available))
        # The publisher hashes keys through keyed(); a key that comes here (aiokafka's own
        # send()) is hashed and forgotten.
        return self.keyed(key, all_partitions, recurs=False)

    @property
    def cached_keys(self) -> int:
        """How many keys' hashes are kept (at most ``max_keys``)."""
        return len(self._hashes)

    def keyed(self, key: bytes, all_partitions: Sequence[int], *, recurs: bool) -> int:
        """The partition for a non-empty ``key`` among ``all_partitions``; the hash is kept
        only if the key ``recurs``."""
        hashed = self._hashes.get(key)
        if hashed is None:
            hashed = murmur2(key) & 0x7FFFFFFF
            if recurs:
                if len(self._hashes) >= self._max_keys:
                    self._hashes.clear()
                self._hashes[key] = hashed
        return all_partitions[hashed % len(all_partitions)]
