"""The partition a Java client would choose for a key, with the hash of recurring keys kept."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from aiokafka.partitioner import DefaultPartitioner

__all__ = ["CachedPartitioner", "murmur2"]

_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (``Utils.murmur2`` of the Java client), as an unsigned int.

    The same arithmetic as aiokafka's ``murmur2``, which reads the body byte by byte and masks
    after every step (16-17 us for a 36-byte event id); here the body is read as little-endian
    words in one ``struct`` call, masked where a product can overflow 32 bits: 8.8 us. A test
    holds the two equal, on Kafka's own test vectors and on generated keys.
    """
    length = len(data)
    h = _SEED ^ length
    for word in struct.unpack_from(f"<{length >> 2}I", data):
        k = (word * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        body = length - tail
        if tail == 3:
            h ^= data[body + 2] << 16
        if tail >= 2:
            h ^= data[body + 1] << 8
        h = ((h ^ data[body]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


class CachedPartitioner:
    """aiokafka's :class:`DefaultPartitioner` (Java-compatible murmur2), with the hash cached.

    murmur2 is pure Python (8.8 us for an event id's 36 bytes here, 16-17 in aiokafka's) and runs
    for every message.
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
