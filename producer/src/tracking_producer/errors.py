"""The producer's errors.

PublishError        Kafka did not acknowledge; ``kind`` says why:
                    unavailable  not connected (nothing was handed over)
                    buffer_full  the bytes awaiting acknowledgement would pass the budget
                    timeout      no acknowledgement within the deadline (may still land)
                    error        Kafka refused the batch (aiokafka's error is the cause)
"""

from __future__ import annotations

__all__ = ["PublishError"]


class PublishError(Exception):
    """Kafka did not acknowledge: ``kind`` is unavailable, timeout, buffer_full or error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
