"""The offset tracker never commits past an unsettled record and ignores fenced results."""

from __future__ import annotations

import pytest
from forwarder_service.offsets import OffsetTracker
from hypothesis import given
from hypothesis import strategies as st

TP = ("events", 0)


def _tracker(*partitions: tuple[str, int]) -> tuple[OffsetTracker[tuple[str, int]], int]:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    generation = tracker.assign(partitions or (TP,))
    return tracker, generation


def test_nothing_is_committable_before_anything_settles() -> None:
    tracker, _ = _tracker()
    tracker.take(TP, [0, 1, 2])
    assert tracker.committable() == {}
    assert tracker.outstanding() == 3


def test_a_later_batch_finishing_first_does_not_move_the_watermark() -> None:
    tracker, gen = _tracker()
    tracker.take(TP, range(10))
    assert tracker.done(TP, gen, range(5, 10))
    assert tracker.committable() == {}
    assert tracker.done(TP, gen, range(5))
    assert tracker.committable() == {TP: 10}


def test_watermark_stops_at_the_first_unsettled_offset() -> None:
    tracker, gen = _tracker()
    tracker.take(TP, [3, 4, 7, 9])  # gaps: compaction or transaction markers
    tracker.done(TP, gen, [3, 7, 9])
    assert tracker.committable() == {TP: 4}
    tracker.done(TP, gen, [4])
    assert tracker.committable() == {TP: 10}


def test_committed_offsets_are_not_offered_again() -> None:
    tracker, gen = _tracker()
    tracker.take(TP, [0, 1])
    tracker.done(TP, gen, [0, 1])
    offsets = tracker.committable()
    tracker.committed(offsets, tracker.generations(offsets))
    assert tracker.committable() == {}
    tracker.take(TP, [2])
    tracker.done(TP, gen, [2])
    assert tracker.committable() == {TP: 3}


def test_results_of_a_revoked_partition_are_ignored() -> None:
    tracker, gen = _tracker()
    tracker.take(TP, [0, 1])
    tracker.revoke([TP])
    assert not tracker.done(TP, gen, [0, 1])
    assert tracker.committable() == {}
    assert tracker.generation(TP) is None


def test_results_of_an_earlier_generation_are_ignored_after_reassignment() -> None:
    tracker, old = _tracker()
    tracker.take(TP, [0, 1])
    new = tracker.assign([TP])
    assert new != old
    tracker.take(TP, [0, 1])
    assert not tracker.done(TP, old, [0, 1])
    assert tracker.committable() == {}
    assert tracker.done(TP, new, [0])
    assert tracker.committable() == {TP: 1}


def test_a_commit_acknowledged_for_an_old_generation_is_not_recorded() -> None:
    tracker, old = _tracker()
    tracker.take(TP, [0])
    tracker.done(TP, old, [0])
    new = tracker.assign([TP])
    tracker.take(TP, [0])
    tracker.done(TP, new, [0])
    tracker.committed({TP: 1}, {TP: old})
    assert tracker.committable() == {TP: 1}


def test_untaken_offsets_can_be_taken_again_after_a_seek_back() -> None:
    tracker, gen = _tracker()
    tracker.take(TP, [0, 1, 2, 3])
    tracker.done(TP, gen, [0])
    tracker.untake_from(TP, 2)
    assert tracker.outstanding() == 1
    tracker.take(TP, [2, 3])
    tracker.done(TP, gen, [1, 2, 3])
    assert tracker.committable() == {TP: 4}


def test_untaking_a_settled_offset_is_refused() -> None:
    tracker, gen = _tracker()
    tracker.take(TP, [0, 1, 2])
    tracker.done(TP, gen, [2])
    with pytest.raises(ValueError, match="already settled"):
        tracker.untake_from(TP, 1)


def test_untaking_below_the_watermark_is_refused() -> None:
    tracker, gen = _tracker()
    tracker.take(TP, [0, 1])
    tracker.done(TP, gen, [0, 1])
    with pytest.raises(ValueError, match="below watermark"):
        tracker.untake_from(TP, 1)


def test_offsets_must_ascend_and_partitions_must_be_owned() -> None:
    tracker, _ = _tracker()
    tracker.take(TP, [5])
    with pytest.raises(ValueError, match="taken after"):
        tracker.take(TP, [5])
    with pytest.raises(ValueError, match="not assigned"):
        tracker.take(("events", 9), [0])


def test_duplicate_and_unknown_settlements_are_harmless() -> None:
    tracker, gen = _tracker()
    tracker.take(TP, [0, 1])
    tracker.done(TP, gen, [0, 0, 42])
    assert tracker.committable() == {TP: 1}


def test_partitions_are_independent_and_committable_can_be_restricted() -> None:
    other = ("events", 1)
    tracker, gen = _tracker(TP, other)
    tracker.take(TP, [0])
    tracker.take(other, [0, 1])
    tracker.done(TP, gen, [0])
    tracker.done(other, gen, [1])
    assert tracker.committable() == {TP: 1}
    assert tracker.committable([other]) == {}
    tracker.done(other, gen, [0])
    assert tracker.committable([other]) == {other: 2}
    progress = tracker.progress()
    assert progress[other].watermark == 2
    assert progress[TP].outstanding == 0


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    gaps = draw(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=60))
    offsets: list[int] = []
    current = draw(st.integers(min_value=0, max_value=1000))
    for gap in gaps:
        offsets.append(current)
        current += gap
    settle_order = draw(st.permutations(offsets))
    return offsets, list(settle_order)


@given(_scenario(), st.integers(min_value=1, max_value=7))
def test_watermark_is_always_the_lowest_unsettled_offset(
    scenario: tuple[list[int], list[int]], chunk: int
) -> None:
    offsets, settle_order = scenario
    tracker, gen = _tracker()
    for start in range(0, len(offsets), chunk):
        tracker.take(TP, offsets[start : start + chunk])
    settled: set[int] = set()
    committed = -1
    for start in range(0, len(settle_order), chunk):
        batch = settle_order[start : start + chunk]
        tracker.done(TP, gen, batch)
        settled.update(batch)
        unsettled = [o for o in offsets if o not in settled]
        offered = tracker.committable().get(TP)
        if offered is not None:
            # Never past an unsettled record, and always monotonic.
            assert not unsettled or offered <= min(unsettled)
            assert offered > committed
            assert all(o in settled for o in offsets if o < offered)
            tracker.committed({TP: offered}, {TP: gen})
            committed = offered
        if unsettled and offsets[0] in settled:
            # Everything before the first unsettled offset is committable.
            first_gap = min(unsettled)
            expected = max(o for o in offsets if o < first_gap) + 1
            assert committed == expected
    assert committed == offsets[-1] + 1
    assert tracker.outstanding() == 0


@given(_scenario(), st.data())
def test_fenced_results_never_change_what_is_committable(
    scenario: tuple[list[int], list[int]], data: st.DataObject
) -> None:
    offsets, settle_order = scenario
    tracker, old = _tracker()
    tracker.take(TP, offsets)
    cut = data.draw(st.integers(min_value=0, max_value=len(settle_order)))
    tracker.done(TP, old, settle_order[:cut])
    before = tracker.committable()
    tracker.revoke([TP])
    new = tracker.assign([TP])
    assert not tracker.done(TP, old, settle_order[cut:])
    assert tracker.committable() == {}
    tracker.take(TP, offsets)
    tracker.done(TP, new, offsets)
    assert tracker.committable() == {TP: offsets[-1] + 1}
    assert before.get(TP, 0) <= offsets[-1] + 1
