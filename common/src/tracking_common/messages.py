"""A Kafka message as the domain hands it to a publisher: topic, value, key and headers."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

__all__ = ["Headers", "Message"]

Headers = Sequence[tuple[str, bytes]]
"""Kafka record headers. A record's are a tuple: the collector untracks a tuple of constants at
its first collection, where a list stays tracked (and walked) until Kafka acknowledged it."""


class Message(msgspec.Struct, gc=False):
    """One Kafka message to publish; ``key_recurs`` when other messages will carry the same key
    (a user's), so the publisher keeps its partition hash rather than hashing it again.

    A Struct the garbage collector does not track (it holds no cycle): one is built per event
    on the ingest hot path and held until Kafka acknowledges it. It costs 90 ns to build
    against 350 for a named tuple, and adds nothing to the collector's work, which grew with
    every message in flight (3-5 us an event of the library's ``send_many`` under the
    default collector settings).
    """

    topic: str
    value: bytes
    key: bytes | None
    headers: Headers
    key_recurs: bool = False
