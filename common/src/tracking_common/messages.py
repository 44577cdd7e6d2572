"""A Kafka message as the domain hands it to a publisher: topic, value, key and headers."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Headers", "Message"]

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message to publish; ``key_recurs`` when other messages will carry the same key
    (a user's), so the publisher keeps its partition hash rather than hashing it again."""

    topic: str
    value: bytes
    key: bytes | None
    headers: Headers
    key_recurs: bool = False
