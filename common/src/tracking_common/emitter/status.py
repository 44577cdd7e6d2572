"""Status tables: what a collector answer (or a transport error) means for a batch.

=======  ========================================================================================
class    what the emitter does
=======  ========================================================================================
success  the events are delivered.
retry    transient: retried with capped, full-jitter exponential backoff (``Retry-After`` wins).
split    the request was too large (413): the batch is halved; one event still refused fails
         for good as ``oversize``.
reject   the events' fault: the batch is bisected (``bisect_rejects``) so good events still get
         through; events still rejected alone fail for good.
fail     not retried, not bisected: the whole batch fails for good (the tracker's 401/403).
setup    not the events' fault (credentials, wrong URL, TLS, DNS): retried forever with a long
         backoff and reported as a set-up failure; never an event's failure.
=======  ========================================================================================

Two presets:

- :meth:`StatusTable.tracker` follows Snowplow's Python tracker: 2xx success; 400, 410, 422
  reject; 401, 403 fail; 413 split; everything else (and every transport error) retry.
  ``custom_retry_codes`` maps a status to True (retry) or False (fail), as the tracker's option.
- :meth:`StatusTable.forwarder` is the forwarder's table: 2xx success; 408, 425, 429 and 5xx
  except 501 retry; 413 split; 400, 410, 422 and other 4xx reject; 401, 403, 404, 405, 501
  and 3xx setup, and so are TLS and DNS errors.

Codes not in a table are transient.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from tracking_common.emitter.errors import TransportErrorKind

__all__ = [
    "FORWARDER_DEFAULTS",
    "TRACKER_DEFAULTS",
    "StatusClass",
    "StatusTable",
    "parse_status_overrides",
]


class StatusClass(StrEnum):
    """What an answer means for the events of a batch."""

    SUCCESS = "success"
    RETRY = "retry"
    SPLIT = "split"
    REJECT = "reject"
    FAIL = "fail"
    SETUP = "setup"


def _tracker_defaults() -> dict[int, StatusClass]:
    table = dict.fromkeys(range(200, 300), StatusClass.SUCCESS)
    table.update(dict.fromkeys((400, 410, 422), StatusClass.REJECT))
    table.update(dict.fromkeys((401, 403), StatusClass.FAIL))
    table[413] = StatusClass.SPLIT
    return table


def _forwarder_defaults() -> dict[int, StatusClass]:
    table = dict.fromkeys(range(200, 300), StatusClass.SUCCESS)
    table.update(dict.fromkeys(range(300, 400), StatusClass.SETUP))
    table.update(dict.fromkeys(range(400, 500), StatusClass.REJECT))
    table.update(dict.fromkeys(range(500, 600), StatusClass.RETRY))
    table.update(dict.fromkeys((408, 425, 429), StatusClass.RETRY))
    table[413] = StatusClass.SPLIT
    table.update(dict.fromkeys((401, 403, 404, 405, 501), StatusClass.SETUP))
    return table


TRACKER_DEFAULTS: Final[Mapping[int, StatusClass]] = MappingProxyType(_tracker_defaults())
FORWARDER_DEFAULTS: Final[Mapping[int, StatusClass]] = MappingProxyType(_forwarder_defaults())


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
    """Classifies statuses and transport errors; immutable once built.

    ``defaults`` is the base table (the tracker's by default), ``overrides`` replace entries,
    ``tls_dns_class`` is the class of TLS and DNS errors (other transport errors always retry).
    """

    def __init__(
        self,
        overrides: Mapping[int, StatusClass] | None = None,
        *,
        defaults: Mapping[int, StatusClass] = TRACKER_DEFAULTS,
        tls_dns_class: StatusClass = StatusClass.RETRY,
    ) -> None:
        self._table: dict[int, StatusClass] = {**defaults, **(overrides or {})}
        self._tls_dns_class = tls_dns_class

    @classmethod
    def tracker(cls, custom_retry_codes: Mapping[int, bool] | None = None) -> StatusTable:
        """Snowplow's Python-tracker semantics; ``custom_retry_codes`` True retries, False fails."""
        overrides = {
            status: StatusClass.RETRY if retry else StatusClass.FAIL
            for status, retry in (custom_retry_codes or {}).items()
        }
        return StatusTable(overrides)

    @classmethod
    def forwarder(cls, overrides: Mapping[int, StatusClass] | None = None) -> StatusTable:
        """The forwarder's table (set-up class for credentials, URL, TLS and DNS problems)."""
        return StatusTable(overrides, defaults=FORWARDER_DEFAULTS, tls_dns_class=StatusClass.SETUP)

    def classify(self, status: int) -> StatusClass:
        """The class of an HTTP status."""
        return self._table.get(status, StatusClass.RETRY)

    def classify_transport(self, kind: TransportErrorKind) -> StatusClass:
        """The class of a request that got no answer."""
        if kind in (TransportErrorKind.TLS, TransportErrorKind.DNS):
            return self._tls_dns_class
        return StatusClass.RETRY

    def codes(self, status_class: StatusClass) -> frozenset[int]:
        """Every status listed with ``status_class``."""
        return frozenset(code for code, cls in self._table.items() if cls is status_class)

    def as_dict(self) -> dict[int, StatusClass]:
        """The whole table."""
        return dict(self._table)
