"""The emitter's fast intake: events staged in the open batch and handed over a run at a time.

:class:`StagedIntake` takes one event as its JSON object less the opening brace (the form
the emitter holds events in, so nothing is sliced or copied). The emitter checks the first
event of each run the long way (state, buffer room, size, byte limit) and then opens the
intake with it for a budget: ``slots`` events and ``room`` bytes that fit the open batch, the
buffer and ``capacity_bytes`` at that moment. Within it, an event costs one comparison and one
``list.append``; the run becomes :class:`PendingEvent` s and enters the accumulator and the
ledger in one step (``commit``) when the budget is spent, and before anything else reads or
changes the emitter's state. An event the budget does not cover goes to ``slow``.

The budget is safe to keep while the run is open: senders settling batches only add room,
and every other way into the emitter commits first, which closes the intake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from tracking_common.emitter.batching import Accumulator
from tracking_common.emitter.payload import STM_BYTES, PendingEvent
from tracking_common.emitter.settling import Settler

__all__ = ["UNBRACED_EXTRA_BYTES", "StagedIntake"]

UNBRACED_EXTRA_BYTES: Final = STM_BYTES + 1
"""What an event less its opening brace adds to a request: the brace, ``stm`` and a comma."""


class StagedIntake:
    """A run of events staged for the open batch (see the module docstring)."""

    __slots__ = ("_acc", "_room", "_settler", "_slots", "_slow", "staged")

    def __init__(
        self, acc: Accumulator, settler: Settler, *, slow: Callable[[bytes], None]
    ) -> None:
        self._acc = acc
        self._settler = settler
        self._slow = slow
        self.staged: list[bytes] = []
        self._slots = 0  # events the open run may still take; 0: closed
        self._room = 0  # bytes it may still take, less UNBRACED_EXTRA_BYTES per slot

    def take(self, data: bytes) -> None:
        """Take one event less its opening brace; beyond the budget, ``slow`` takes it."""
        room = self._room - len(data)
        slots = self._slots
        if room >= 0 and slots:
            self._room = room
            self._slots = slots - 1
            self.staged.append(data)
            if slots == 1:
                self.commit()
            return
        self._slow(data)

    def open(self, slots: int, room_bytes: int, first: bytes) -> None:
        """Stage ``first`` (checked by the caller) and let the next ``slots - 1`` events
        through, ``room_bytes`` request bytes in all."""
        self.staged.append(first)
        self._slots = slots - 1
        self._room = room_bytes - len(first) - UNBRACED_EXTRA_BYTES * slots
        if slots <= 1:
            self.commit()

    def held(self) -> tuple[int, int]:
        """The events staged and their request bytes."""
        staged = self.staged
        return len(staged), sum(map(len, staged)) + UNBRACED_EXTRA_BYTES * len(staged)

    def commit(self) -> None:
        """Hand the staged run to the accumulator and the ledger; close the intake."""
        self._slots = 0
        staged = self.staged
        if not staged:
            return
        sizes = [len(data) + UNBRACED_EXTRA_BYTES for data in staged]
        events = list(map(PendingEvent, staged, sizes))
        staged.clear()
        self._settler.hold(len(events), sum(sizes))
        self._acc.extend(events, buffered=True)
