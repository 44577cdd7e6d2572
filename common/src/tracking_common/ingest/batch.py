"""The outcome of checking one request: accepted event ids, rejections, messages to publish."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tracking_common.errors import ValidationIssue
from tracking_common.messages import Message

__all__ = ["Batch", "Rejection"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected item: its index in the request, its event id if known, and every issue."""

    index: int
    event_id: str | None
    issues: Sequence[ValidationIssue]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form listed in the response."""
        return {
            "index": self.index,
            "event_id": self.event_id,
            "errors": [issue.as_dict() for issue in self.issues],
        }


@dataclass(slots=True)
class Batch:
    """The outcome of checking one request's items: ``messages`` holds the records of the
    accepted events and the bad events of the rejected ones, in request order."""

    accepted_ids: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """How many events were accepted."""
        return len(self.accepted_ids)
