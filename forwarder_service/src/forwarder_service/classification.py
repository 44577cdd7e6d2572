"""The forwarder's HTTP status table: which collector answers are whose fault.

========  ====================================================================================
success   2xx: delivered.
retry     transient: 408, 425, 429 and 5xx except 501 (plus network errors and timeouts, which
          the emitter classifies itself): retried with capped, jittered exponential backoff,
          honouring ``Retry-After``.
split     413: the batch is split in halves; one event still too large is dead-lettered as
          ``oversize``.
reject    the record's fault: 400, 410, 422 and any other 4xx not listed here. The batch is
          bisected so good events still get through; the rejected ones are dead-lettered.
setup     not the records' fault: 401, 403, 404, 405, 501 and 3xx (credentials, wrong URL or
          method, plus TLS and DNS errors): retried forever with a long backoff, consumption
          paused, alert through metrics and logs. Never dead-lettered.
========  ====================================================================================

``FORWARDER_STATUS_OVERRIDES`` changes the table, e.g. ``404=retry,409=reject,520-529=retry``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = ["DEFAULT_TABLE", "StatusClass", "StatusTable", "parse_status_overrides"]


class StatusClass(StrEnum):
    """What a collector answer means for the events of a batch."""

    SUCCESS = "success"
    RETRY = "retry"
    SPLIT = "split"
    REJECT = "reject"
    SETUP = "setup"


def _default_table() -> dict[int, StatusClass]:
    table: dict[int, StatusClass] = {}
    for status in range(200, 300):
        table[status] = StatusClass.SUCCESS
    for status in range(300, 400):
        table[status] = StatusClass.SETUP
    for status in range(400, 500):
        table[status] = StatusClass.REJECT
    for status in range(500, 600):
        table[status] = StatusClass.RETRY
    table.update(
        {
            408: StatusClass.RETRY,
            425: StatusClass.RETRY,
            429: StatusClass.RETRY,
            413: StatusClass.SPLIT,
            401: StatusClass.SETUP,
            403: StatusClass.SETUP,
            404: StatusClass.SETUP,
            405: StatusClass.SETUP,
            501: StatusClass.SETUP,
        }
    )
    return table


DEFAULT_TABLE: Final[Mapping[int, StatusClass]] = MappingProxyType(_default_table())


def parse_status_overrides(text: str) -> dict[int, StatusClass]:
    """Parse ``code=class`` / ``low-high=class`` pairs separated by commas.

    Raises ValueError naming the bad entry.
    """
    overrides: dict[int, StatusClass] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        codes, sep, name = entry.partition("=")
        try:
            status_class = StatusClass(name.strip().lower())
        except ValueError:
            choices = ", ".join(c.value for c in StatusClass)
            raise ValueError(f"{entry!r}: class must be one of {choices}") from None
        low, dash, high = codes.strip().partition("-")
        if not sep or not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"{entry!r} is not code=class or low-high=class")
        first, last = int(low), int(high) if dash else int(low)
        if not 100 <= first <= last <= 599:
            raise ValueError(f"{entry!r}: status codes must be within 100-599")
        for status in range(first, last + 1):
            overrides[status] = status_class
    return overrides


class StatusTable:
    """The default table with overrides applied; unknown codes are transient."""

    def __init__(self, overrides: Mapping[int, StatusClass] | None = None) -> None:
        self._table = {**DEFAULT_TABLE, **(overrides or {})}

    @classmethod
    def from_text(cls, text: str) -> StatusTable:
        """Build from ``FORWARDER_STATUS_OVERRIDES`` text."""
        return cls(parse_status_overrides(text))

    def classify(self, status: int) -> StatusClass:
        """The class of ``status``."""
        return self._table.get(status, StatusClass.RETRY)

    def codes(self, status_class: StatusClass) -> frozenset[int]:
        """Every status listed with ``status_class``."""
        return frozenset(code for code, cls in self._table.items() if cls is status_class)

    def as_dict(self) -> dict[int, StatusClass]:
        """The whole table."""
        return dict(self._table)
