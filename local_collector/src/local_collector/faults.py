"""Fault injection: what the collector does instead of (or before) accepting a request.

A fault is described by JSON (see ``docs/local_collector.md``)::

    {"status": 500, "count": 3}                          next 3 requests answer 500
    {"status": 503, "duration_s": 2, "retry_after": "1"}  503 with Retry-After for 2 seconds
    {"delay_s": 1.5, "count": 2}                         next 2 requests wait 1.5 s, then proceed
    {"drop_connection": true, "count": 1}                close the socket without an answer
    {"status": 413, "max_events": 10}                    413 when a request carries > 10 events
    {"status": 400, "when_eid": ["..."]}                 400 when a request carries one of these

``count`` limits a fault to the next N requests it matches, ``duration_s`` to the next N
seconds; with neither it lasts until cleared. Faults are checked in the order they were added
and the first one that matches a request applies; only that one is consumed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ActiveFault", "FaultAction", "FaultInjector", "FaultSpec"]

Clock = Callable[[], float]


class FaultSpec(BaseModel):
    """One fault as posted to ``/micro/faults``; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int | None = Field(default=None, ge=200, le=599)
    count: int | None = Field(default=None, ge=1)
    duration_s: float | None = Field(default=None, gt=0)
    retry_after: str | None = Field(default=None, min_length=1, max_length=64)
    delay_s: float | None = Field(default=None, ge=0, le=600)
    drop_connection: bool = False
    max_events: int | None = Field(default=None, ge=0)
    when_eid: frozenset[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_status(cls, data: Any) -> Any:
        # The conditional faults have one obvious answer; saying it again is optional.
        if isinstance(data, dict) and data.get("status") is None:
            if data.get("max_events") is not None:
                return {**data, "status": 413}
            if data.get("when_eid") is not None:
                return {**data, "status": 400}
        return data

    @model_validator(mode="after")
    def _one_effect(self) -> Self:
        if self.status is None and self.delay_s is None and not self.drop_connection:
            raise ValueError("a fault needs status, delay_s or drop_connection")
        if self.drop_connection and self.status is not None:
            raise ValueError("drop_connection answers nothing, so it takes no status")
        if self.retry_after is not None and self.status is None:
            raise ValueError("retry_after needs a status")
        return self

    def matches(self, event_count: int, eids: Collection[str]) -> bool:
        """Whether a request carrying ``event_count`` events with ``eids`` triggers this fault."""
        if self.max_events is not None and event_count <= self.max_events:
            return False
        return self.when_eid is None or not self.when_eid.isdisjoint(eids)


@dataclass(frozen=True, slots=True)
class FaultAction:
    """What to do with one request: wait ``delay_s``, then drop it, answer ``status``, or go on."""

    fault_id: int
    status: int | None
    retry_after: str | None
    delay_s: float
    drop_connection: bool

    @property
    def stops_request(self) -> bool:
        """True when the request is not processed (so nothing is stored)."""
        return self.drop_connection or self.status is not None


@dataclass(slots=True)
class ActiveFault:
    """A fault with what is left of it: requests (``remaining``) and time (``expires_at``)."""

    fault_id: int
    spec: FaultSpec
    remaining: int | None
    expires_at: float | None

    def expired(self, now: float) -> bool:
        """Whether the fault is used up or out of time."""
        if self.remaining is not None and self.remaining <= 0:
            return True
        return self.expires_at is not None and now >= self.expires_at

    def describe(self, now: float) -> dict[str, Any]:
        """The fault as JSON, with ``id``, ``remaining`` and ``remaining_s``."""
        body = self.spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        if self.spec.when_eid is not None:
            body["when_eid"] = sorted(self.spec.when_eid)
        body["id"] = self.fault_id
        if self.remaining is not None:
            body["remaining"] = self.remaining
        if self.expires_at is not None:
            body["remaining_s"] = round(max(0.0, self.expires_at - now), 3)
        return body


class FaultInjector:
    """The ordered list of active faults. Thread-safe; ``take`` consumes what it returns."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._faults: list[ActiveFault] = []
        self._next_id = 1
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        """False when no fault is registered (the hot path checks this and nothing else)."""
        return bool(self._faults)

    @property
    def needs_eids(self) -> bool:
        """Whether any fault looks at event ids (so callers extract them only then)."""
        return any(fault.spec.when_eid is not None for fault in self._faults)

    def add(self, spec: FaultSpec) -> dict[str, Any]:
        """Append a fault (its ``duration_s`` starts now); return it as JSON, with its id."""
        with self._lock:
            now = self._clock()
            fault = ActiveFault(
                fault_id=self._next_id,
                spec=spec,
                remaining=spec.count,
                expires_at=None if spec.duration_s is None else now + spec.duration_s,
            )
            self._next_id += 1
            self._faults.append(fault)
            return fault.describe(now)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        """The faults still in force, in order, as JSON."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            return [fault.describe(now) for fault in self._faults]

    def take(self, event_count: int, eids: Collection[str] = ()) -> FaultAction | None:
        """The first fault matching a request, consumed once; None when none applies."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            for fault in self._faults:
                if not fault.spec.matches(event_count, eids):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                spec = fault.spec
                self._prune(now)
                return FaultAction(
                    fault_id=fault.fault_id,
                    status=spec.status,
                    retry_after=spec.retry_after,
                    delay_s=spec.delay_s or 0.0,
                    drop_connection=spec.drop_connection,
                )
            return None

    def _prune(self, now: float) -> None:
        self._faults = [fault for fault in self._faults if not fault.expired(now)]
