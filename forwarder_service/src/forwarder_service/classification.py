"""The forwarder's HTTP status table: which collector answers are whose fault.

The table and its classes are the emitter core's (``tracking_common.emitter.status``); the
forwarder's defaults and overrides are data given to it.

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

from tracking_common.emitter.status import (
    FORWARDER_DEFAULTS,
    StatusClass,
    StatusTable,
    parse_status_overrides,
)

__all__ = ["DEFAULT_TABLE", "StatusClass", "parse_status_overrides", "status_table"]

DEFAULT_TABLE: Final[Mapping[int, StatusClass]] = FORWARDER_DEFAULTS


def status_table(overrides: str = "") -> StatusTable:
    """The core's forwarder table (TLS/DNS are set-up failures) with
    ``FORWARDER_STATUS_OVERRIDES`` applied."""
    return StatusTable.forwarder(parse_status_overrides(overrides))
