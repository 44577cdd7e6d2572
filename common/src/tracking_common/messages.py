"""A Kafka message as the domain hands it to a publisher: topic, value, key and headers."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Headers", "Message"]

Headers = list[tuple[str, bytes]]


class Message(NamedTuple):
    """One Kafka message to publish; ``key_recurs`` when other messages will carry the same key
    (a user's), so the publisher keeps its partition hash rather than hashing it again.

    A named tuple rather than a frozen dataclass: one is built per event on the ingest hot
    path, and a frozen dataclass costs twice as much to construct (2.3 against 1.1 us).
    """

    topic: str
    value: bytes
    key: bytes | None
    headers: Headers
    key_recurs: bool = False
