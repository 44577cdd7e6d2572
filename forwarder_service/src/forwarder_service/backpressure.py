"""When to stop fetching: a hysteresis gate over the in-memory backlog (pure; no I/O).

The backlog is everything taken from Kafka and not yet settled: events buffered or in flight in
the emitter plus records waiting for a dead-letter acknowledgement. Above the high-water mark
(either bound: events or bytes) the consumer stops fetching (it holds, then pauses every
assigned partition: ``forwarder_service.consumer``); it resumes only once the backlog is below
``resume_ratio`` of both bounds, so it does not flap at the edge. While
the collector is in a *setup* failure (bad credentials, wrong URL, TLS/DNS), fetching stays
paused whatever the backlog: the records would only pile up behind the broken endpoint.

One fetch can overshoot the bound by at most ``max_poll_records`` events, which the caller adds
to its memory budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["BacklogBound", "FlowGate", "GateState", "PauseReason"]


class PauseReason(StrEnum):
    """Why fetching is paused."""

    BACKLOG_EVENTS = "backlog_events"
    BACKLOG_BYTES = "backlog_bytes"
    SETUP_FAILURE = "setup_failure"
    SINK_FULL = "sink_full"


@dataclass(frozen=True, slots=True)
class BacklogBound:
    """High-water marks of the backlog and the fraction of them at which fetching resumes."""

    max_events: int
    max_bytes: int
    resume_ratio: float = 0.5

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_bytes < 1:
            raise ValueError("backlog bounds must be positive")
        if not 0.0 <= self.resume_ratio < 1.0:
            raise ValueError("resume_ratio must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class GateState:
    """The gate's decision: paused or not, and why."""

    paused: bool
    reason: PauseReason | None = None


class FlowGate:
    """Decides, from backlog observations, whether fetching should be paused."""

    def __init__(self, bound: BacklogBound) -> None:
        self._bound = bound
        self._state = GateState(paused=False)

    @property
    def bound(self) -> BacklogBound:
        """The configured bound."""
        return self._bound

    @property
    def state(self) -> GateState:
        """The last decision."""
        return self._state

    def hold(self) -> GateState:
        """Pause now because the sink refused an event; resumes at the low-water mark."""
        if not self._state.paused:
            self._state = GateState(paused=True, reason=PauseReason.SINK_FULL)
        return self._state

    def update(self, *, events: int, size_bytes: int, setup_failure: bool) -> GateState:
        """Feed the current backlog; return the (possibly changed) decision."""
        bound = self._bound
        if setup_failure:
            self._state = GateState(paused=True, reason=PauseReason.SETUP_FAILURE)
        elif events >= bound.max_events:
            self._state = GateState(paused=True, reason=PauseReason.BACKLOG_EVENTS)
        elif size_bytes >= bound.max_bytes:
            self._state = GateState(paused=True, reason=PauseReason.BACKLOG_BYTES)
        elif self._state.paused:
            # Resume only well below both marks, unless the pause was for a setup failure that
            # has cleared and the backlog is already under the high-water marks.
            low_events = bound.max_events * bound.resume_ratio
            low_bytes = bound.max_bytes * bound.resume_ratio
            drained = events <= low_events and size_bytes <= low_bytes
            if drained or self._state.reason is PauseReason.SETUP_FAILURE:
                self._state = GateState(paused=False)
        return self._state
