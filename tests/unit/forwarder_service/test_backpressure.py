"""The flow gate pauses above either bound, resumes below the low-water mark, and holds on
setup failures."""

from __future__ import annotations

import pytest
from forwarder_service.backpressure import BacklogBound, FlowGate, PauseReason


def _gate() -> FlowGate:
    return FlowGate(BacklogBound(max_events=100, max_bytes=1000, resume_ratio=0.5))


def test_stays_open_below_the_bounds() -> None:
    gate = _gate()
    assert not gate.update(events=99, size_bytes=999, setup_failure=False).paused


def test_pauses_at_the_event_bound_and_resumes_only_at_low_water() -> None:
    gate = _gate()
    state = gate.update(events=100, size_bytes=0, setup_failure=False)
    assert state.paused
    assert state.reason is PauseReason.BACKLOG_EVENTS
    assert gate.update(events=60, size_bytes=0, setup_failure=False).paused
    assert not gate.update(events=50, size_bytes=0, setup_failure=False).paused


def test_pauses_at_the_byte_bound_and_needs_both_low() -> None:
    gate = _gate()
    assert gate.update(events=1, size_bytes=1000, setup_failure=False).reason is (
        PauseReason.BACKLOG_BYTES
    )
    assert gate.update(events=1, size_bytes=501, setup_failure=False).paused
    assert not gate.update(events=1, size_bytes=500, setup_failure=False).paused


def test_setup_failure_pauses_whatever_the_backlog_and_clears_when_fixed() -> None:
    gate = _gate()
    state = gate.update(events=0, size_bytes=0, setup_failure=True)
    assert state.paused
    assert state.reason is PauseReason.SETUP_FAILURE
    assert not gate.update(events=70, size_bytes=0, setup_failure=False).paused


def test_a_setup_failure_clearing_above_the_bound_keeps_the_backlog_pause() -> None:
    gate = _gate()
    gate.update(events=0, size_bytes=0, setup_failure=True)
    assert gate.update(events=150, size_bytes=0, setup_failure=False).reason is (
        PauseReason.BACKLOG_EVENTS
    )


@pytest.mark.parametrize(
    ("events", "size_bytes", "ratio"), [(0, 1, 0.5), (1, 0, 0.5), (1, 1, 1.0), (1, 1, -0.1)]
)
def test_bad_bounds_are_refused(events: int, size_bytes: int, ratio: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        BacklogBound(max_events=events, max_bytes=size_bytes, resume_ratio=ratio)


def test_hold_pauses_until_low_water() -> None:
    gate = _gate()
    assert gate.hold().reason is PauseReason.SINK_FULL
    assert gate.update(events=80, size_bytes=0, setup_failure=False).paused
    assert not gate.update(events=10, size_bytes=0, setup_failure=False).paused
