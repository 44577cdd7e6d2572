"""Errors of the forwarder service.

Hierarchy::

    ForwarderError                     root of every error raised by forwarder_service
    +-- RetryableForwarderError        the operation may succeed if tried again later
    |   +-- CommitRejectedError        the group rebalanced under a commit; re-seek and go on
    +-- FatalForwarderError            the service must stop without committing past the failure
    |   +-- DeadLetterWriteError       the dead-letter topic did not acknowledge a record in time
    |   +-- ConsumerCrashedError       the Kafka consumer failed in a way it cannot recover from
    +-- ReplayError                    the replay tool cannot run (bad filter, unreachable topic)

A fatal error makes ``forwarder-service`` exit non-zero. Offsets are only ever committed up to
records that were delivered or dead-lettered, so a restart resumes at the first record whose
fate is unknown: duplicates are possible, loss is not.
"""

from __future__ import annotations

__all__ = [
    "CommitRejectedError",
    "ConsumerCrashedError",
    "DeadLetterWriteError",
    "FatalForwarderError",
    "ForwarderError",
    "ReplayError",
    "RetryableForwarderError",
]


class ForwarderError(Exception):
    """Root of the errors raised by forwarder_service."""


class RetryableForwarderError(ForwarderError):
    """A transient failure: trying again later may succeed."""


class CommitRejectedError(RetryableForwarderError):
    """The broker refused an offset commit because the group moved on (a rebalance)."""


class FatalForwarderError(ForwarderError):
    """The service cannot go on safely; it stops consuming and exits non-zero."""


class DeadLetterWriteError(FatalForwarderError):
    """Records could not be written to the dead-letter topic with ``acks=all``.

    ``count`` records were affected; their offsets are never committed.
    """

    def __init__(self, message: str, *, topic: str, count: int) -> None:
        super().__init__(message)
        self.topic = topic
        self.count = count


class ConsumerCrashedError(FatalForwarderError):
    """The Kafka consumer raised an error it cannot recover from."""


class ReplayError(ForwarderError):
    """The replay tool was given something it cannot do, or Kafka refused it."""
