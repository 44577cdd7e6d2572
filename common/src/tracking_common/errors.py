"""Errors of the tracking domain.

Hierarchy::

    TrackingError                      root of every error raised by tracking_common
    +-- InvalidEventError              an event breaks the model; carries ValidationIssues
    |   +-- PayloadError               a tracker-protocol payload cannot be mapped to an event
    |   +-- RecordContractError        a Kafka record breaks the event-record contract

The emitter core has its own tree (``tracking_common.emitter.errors``), rooted at
``EmitterError``, which also derives from ``TrackingError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "InvalidEventError",
    "PayloadError",
    "RecordContractError",
    "TrackingError",
    "ValidationIssue",
]


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One machine-readable problem with an input.

    ``path`` is a JSON-pointer-like location inside the input ("" for the whole input),
    ``code`` a stable snake_case tag (safe as a metric label), ``message`` a human sentence.
    """

    path: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The issue as a JSON-ready mapping."""
        return {"path": self.path, "code": self.code, "message": self.message}


class TrackingError(Exception):
    """Root of the errors raised by tracking_common."""


class InvalidEventError(TrackingError):
    """An event does not satisfy the event model; ``issues`` lists every problem found."""

    def __init__(self, issues: Iterable[ValidationIssue]) -> None:
        self.issues: Sequence[ValidationIssue] = tuple(issues)
        summary = "; ".join(f"{i.path or '<root>'}: {i.message}" for i in self.issues[:5])
        super().__init__(summary or "invalid event")

    @property
    def codes(self) -> tuple[str, ...]:
        """The distinct issue codes, in order of first appearance."""
        return tuple(dict.fromkeys(issue.code for issue in self.issues))


class PayloadError(InvalidEventError):
    """A tracker-protocol payload cannot be turned into an event."""


class RecordContractError(InvalidEventError):
    """A Kafka record value does not follow the event-record contract."""
