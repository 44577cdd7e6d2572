"""The offset tracker never commits past an unsettled record and ignores fenced results."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from forwarder_service.offsets import OffsetTracker, RecordSlice
from hypothesis import given
from hypothesis import strategies as st

TP = ("events", 0)
Tracker = OffsetTracker[tuple[str, int]]
Slice = RecordSlice[tuple[str, int]]


def _tracker(*partitions: tuple[str, int]) -> tuple[Tracker, int]:
    tracker: Tracker = OffsetTracker()
    generation = tracker.assign(partitions or (TP,))
    return tracker, generation


def _take(tracker: Tracker, offsets: Sequence[int], tp: tuple[str, int] = TP) -> Slice:
    generation = tracker.generation(tp)
    assert generation is not None
    piece = RecordSlice(tp, generation, offsets[0], offsets[-1], len(offsets), 1_000 + offsets[0])
    tracker.take(piece)
    return piece


def test_nothing_is_committable_before_anything_settles() -> None:
    tracker, _ = _tracker()
    _take(tracker, [0, 1, 2])
    assert tracker.committable() == {}
    assert tracker.outstanding() == 3


def test_a_later_slice_finishing_first_does_not_move_the_watermark() -> None:
    tracker, _ = _tracker()
    first, second = _take(tracker, range(5)), _take(tracker, range(5, 10))
    assert tracker.settle(second, 5)
    assert tracker.committable() == {}
    assert tracker.settle(first, 4)
    assert tracker.committable() == {}
    assert tracker.settle(first, 1)
    assert tracker.committable() == {TP: 10}


def test_a_slice_with_gaps_commits_past_its_last_offset() -> None:
    tracker, _ = _tracker()
    piece = _take(tracker, [3, 4, 7, 9])  # gaps: compaction or transaction markers
    tracker.settle(piece, 3)
    assert tracker.committable() == {}
    tracker.settle(piece, 1)
    assert tracker.committable() == {TP: 10}


def test_committed_offsets_are_not_offered_again() -> None:
    tracker, _ = _tracker()
    tracker.settle(_take(tracker, [0, 1]), 2)
    offsets = tracker.committable()
    tracker.committed(offsets, tracker.generations(offsets))
    assert tracker.committable() == {}
    tracker.settle(_take(tracker, [2]))
    assert tracker.committable() == {TP: 3}


def test_results_of_a_revoked_partition_are_ignored() -> None:
    tracker, _ = _tracker()
    piece = _take(tracker, [0, 1])
    tracker.revoke([TP])
    assert not tracker.current(piece)
    assert not tracker.settle(piece, 2)
    assert tracker.committable() == {}
    assert tracker.generation(TP) is None


def test_results_of_an_earlier_generation_are_ignored_after_reassignment() -> None:
    tracker, old = _tracker()
    stale = _take(tracker, [0, 1])
    new = tracker.assign([TP])
    assert new != old
    fresh = _take(tracker, [0, 1])
    assert not tracker.settle(stale, 2)
    assert tracker.committable() == {}
    assert tracker.current(fresh)
    assert tracker.settle(fresh, 2)
    assert tracker.committable() == {TP: 2}


def test_a_commit_acknowledged_for_an_old_generation_is_not_recorded() -> None:
    tracker, old = _tracker()
    tracker.settle(_take(tracker, [0]))
    tracker.assign([TP])
    tracker.settle(_take(tracker, [0]))
    tracker.committed({TP: 1}, {TP: old})
    assert tracker.committable() == {TP: 1}


def test_slices_must_ascend_belong_to_the_generation_and_partitions_must_be_owned() -> None:
    tracker, generation = _tracker()
    _take(tracker, [5])
    with pytest.raises(ValueError, match="taken after"):
        _take(tracker, [5])
    with pytest.raises(ValueError, match="not of generation"):
        tracker.take(RecordSlice(TP, generation + 1, 6, 6, 1, 0))
    with pytest.raises(ValueError, match="not assigned"):
        tracker.take(RecordSlice(("events", 9), generation, 0, 0, 1, 0))


def test_settling_more_than_a_slice_holds_is_refused() -> None:
    tracker, _ = _tracker()
    piece = _take(tracker, [0, 1])
    with pytest.raises(ValueError, match="settled of"):
        tracker.settle(piece, 3)
    assert tracker.outstanding() == 2


def test_partitions_are_independent_and_committable_can_be_restricted() -> None:
    other = ("events", 1)
    tracker, _ = _tracker(TP, other)
    mine, theirs = _take(tracker, [0]), _take(tracker, [0, 1], other)
    tracker.settle(mine)
    tracker.settle(theirs)
    assert tracker.committable() == {TP: 1}
    assert tracker.committable([other]) == {}
    tracker.settle(theirs)
    assert tracker.committable([other]) == {other: 2}
    progress = tracker.progress()
    assert progress[other].watermark == 2
    assert progress[TP].outstanding == 0


def test_the_oldest_unsettled_time_is_the_first_waiting_slices() -> None:
    other = ("events", 1)
    tracker, _ = _tracker(TP, other)
    assert tracker.oldest_unsettled_ms() is None
    first, second = _take(tracker, [0, 1]), _take(tracker, [2])
    _take(tracker, [7], other)
    assert tracker.oldest_unsettled_ms() == 1_000
    tracker.settle(second)
    assert tracker.oldest_unsettled_ms() == 1_000  # the earlier slice still waits
    tracker.settle(first, 2)
    assert tracker.oldest_unsettled_ms() == 1_007


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Slices of ascending offsets (with gaps), and the order their records settle in as
    (slice index, offset) pairs."""
    gaps = draw(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=60))
    offsets: list[int] = []
    current = draw(st.integers(min_value=0, max_value=1000))
    for gap in gaps:
        offsets.append(current)
        current += gap
    cuts = sorted(draw(st.sets(st.integers(1, len(offsets) - 1), max_size=8))) if gaps[1:] else []
    bounds = [0, *cuts, len(offsets)]
    slices = [offsets[a:b] for a, b in itertools.pairwise(bounds)]
    records = [(n, offset) for n, piece in enumerate(slices) for offset in piece]
    return slices, list(draw(st.permutations(records)))


@given(_scenario(), st.integers(min_value=1, max_value=7))
def test_the_committed_offset_never_passes_an_unsettled_record(
    scenario: tuple[list[list[int]], list[tuple[int, int]]], chunk: int
) -> None:
    slices, settle_order = scenario
    offsets = [offset for piece in slices for offset in piece]
    tracker, gen = _tracker()
    pieces = [_take(tracker, piece) for piece in slices]
    settled: set[int] = set()
    committed = -1
    for start in range(0, len(settle_order), chunk):
        for n, offset in settle_order[start : start + chunk]:
            assert tracker.settle(pieces[n])
            settled.add(offset)
        unsettled = [o for o in offsets if o not in settled]
        offered = tracker.committable().get(TP)
        if offered is not None:
            # Never past an unsettled record, and always monotonic.
            assert not unsettled or offered <= min(unsettled)
            assert offered > committed
            assert all(o in settled for o in offsets if o < offered)
            tracker.committed({TP: offered}, {TP: gen})
            committed = offered
        # Every slice wholly settled before the first unsettled record is committed.
        done = [piece for piece in slices if all(o in settled for o in piece)]
        prefix = 0
        while prefix < len(slices) and slices[prefix] in done:
            prefix += 1
        if prefix:
            assert committed == slices[prefix - 1][-1] + 1
    assert committed == offsets[-1] + 1
    assert tracker.outstanding() == 0


@given(_scenario(), st.data())
def test_fenced_results_never_change_what_is_committable(
    scenario: tuple[list[list[int]], list[tuple[int, int]]], data: st.DataObject
) -> None:
    slices, settle_order = scenario
    tracker, _ = _tracker()
    pieces = [_take(tracker, piece) for piece in slices]
    cut = data.draw(st.integers(min_value=0, max_value=len(settle_order)))
    for n, _offset in settle_order[:cut]:
        tracker.settle(pieces[n])
    before = tracker.committable()
    tracker.revoke([TP])
    tracker.assign([TP])
    assert not any(tracker.settle(pieces[n]) for n, _offset in settle_order[cut:])
    assert tracker.committable() == {}
    last = slices[-1][-1]
    fresh = _take(tracker, [offset for piece in slices for offset in piece])
    tracker.settle(fresh, fresh.count)
    assert tracker.committable() == {TP: last + 1}
    assert before.get(TP, 0) <= last + 1
