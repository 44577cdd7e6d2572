"""The forwarder's HTTP status table: which collector answers are whose fault.

The table and its classes live in the emitter core (``tracking_common.emitter.status``);
this module keeps the forwarder's names and its defaults.

========  ====================================================================================
success   2xx: delivered.
retry     transient: 408, 425, 429 and 5xx except 501 (plus network errors and timeouts):
          retried with capped, jittered exponential backoff, honouring ``Retry-After``.
split     413: the batch is split in halves; one event still too large is dead-lettered as
          ``oversize``.
reject    the record's fault: 400, 410, 422 and any other 4xx not listed here. The batch is
          bisected so good events still get through; the rejected ones are dead-lettered.
fail      (only by override) dead-lettered as a whole batch, without bisecting.
setup     not the records' fault: 401, 403, 404, 405, 501 and 3xx (credentials, wrong URL or
          method, plus TLS and DNS errors): retried forever with a long backoff, consumption
          paused, alert through metrics and logs. Never dead-lettered.
========  ====================================================================================

``FORWARDER_STATUS_OVERRIDES`` changes the table, e.g. ``404=retry,409=reject,520-529=retry``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from tracking_common.emitter.status import FORWARDER_DEFAULTS, StatusClass, parse_status_overrides
from tracking_common.emitter.status import StatusTable as CoreStatusTable

__all__ = ["DEFAULT_TABLE", "StatusClass", "StatusTable", "parse_status_overrides"]

DEFAULT_TABLE: Final[Mapping[int, StatusClass]] = FORWARDER_DEFAULTS


class StatusTable(CoreStatusTable):
    """The forwarder's table with overrides applied; TLS/DNS are set-up failures."""

    def __init__(self, overrides: Mapping[int, StatusClass] | None = None) -> None:
        super().__init__(overrides, defaults=FORWARDER_DEFAULTS, tls_dns_class=StatusClass.SETUP)

    @classmethod
    def from_text(cls, text: str) -> StatusTable:
        """Build from ``FORWARDER_STATUS_OVERRIDES`` text."""
        return cls(parse_status_overrides(text))
