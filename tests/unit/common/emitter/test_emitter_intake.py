"""``AsyncEmitter.intake``: runs of events staged and committed once, as ``add`` takes them.

The intake checks the first event of a run the long way and lets the rest of the run through
on a budget; these tests hold it to the general path: the same requests, refusals, counts
and flushes, whatever the batch size, limits and interleaving with the other intakes.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tracking_common.emitter import (
    AsyncEmitter,
    BufferFullError,
    EmitterClosedError,
    EventTooLargeError,
    PendingEvent,
)
from tracking_common.emitter.payload import ENVELOPE_BYTES, encoded_size
from tracking_common.emitter.testing import FakeHttpClient, FakeSleep

from tests.support.fuzzing import examples
from tests.support.waiting import wait_until

URL = "http://collector.test"


def encoded(n: int, *, pad: int = 0) -> bytes:
    return orjson.dumps({"e": "pv", "eid": str(uuid.UUID(int=n)), "tv": "t", "url": "u" * pad})


def emitter(client: FakeHttpClient, **options: Any) -> AsyncEmitter:
    options.setdefault("flush_interval_s", None)
    return AsyncEmitter(URL, client=client, sleep=FakeSleep(), **options)


def sent(client: FakeHttpClient) -> list[list[dict[str, str]]]:
    """Each request's events, ``stm`` left out."""
    return [
        [{k: v for k, v in event.items() if k != "stm"} for event in request.events]
        for request in client.requests
    ]


def outcome(take: Any, *args: Any) -> str:
    try:
        take(*args)
    except (BufferFullError, EventTooLargeError) as exc:
        return type(exc).__name__
    return "taken"


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("event"), st.sampled_from([0, 0, 0, 60, 400])),
        st.tuples(st.just("add"), st.sampled_from([0, 60])),
        st.tuples(st.just("encoded"), st.integers(1, 3)),
        st.tuples(st.just("flush_nowait"), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=examples(150), deadline=None)
@given(
    _STEPS,
    st.fixed_dictionaries(
        {
            "batch_size": st.integers(1, 8),
            "byte_limit": st.sampled_from([None, 500, 900]),
            "buffer_capacity": st.integers(1, 12),
            "capacity_bytes": st.sampled_from([None, 330, 450, 700]),
            "on_oversize": st.sampled_from(["raise", "fail"]),
        }
    ),
)
async def test_the_intake_takes_and_refuses_as_add_and_sends_the_same_requests(
    steps: list[tuple[str, int]], options: dict[str, Any]
) -> None:
    by_intake, by_add = FakeHttpClient(), FakeHttpClient()
    fast, general = emitter(by_intake, **options), emitter(by_add, **options)
    intake = fast.intake()
    for n, (kind, size) in enumerate(steps, start=1):
        # No await between steps: the senders do not run, so the buffer fills as it would
        # under a slow collector.
        if kind == "event":
            data = encoded(n, pad=size)
            assert outcome(intake, data[1:]) == outcome(general.add, orjson.loads(data))
        elif kind == "add":
            payload = orjson.loads(encoded(n, pad=size))
            assert outcome(fast.add, payload) == outcome(general.add, payload)
        elif kind == "encoded":
            run = [encoded(n * 10 + k) for k in range(size)]
            tags = [None] * size
            assert fast.add_encoded(run, tags) == general.add_encoded(run, tags)
        else:
            fast.flush_nowait()
            general.flush_nowait()
        assert fast.pending == general.pending
    await fast.flush()
    await general.flush()
    assert sent(by_intake) == sent(by_add)
    assert [len(r.body) for r in by_intake.requests] == [len(r.body) for r in by_add.requests]
    assert fast.pending == general.pending == (0, 0)
    await fast.close()
    await general.close()


@pytest.mark.parametrize("limit", ["byte_limit", "capacity_bytes"])
async def test_a_run_stops_at_the_byte_bounds_exactly_as_add_does(limit: str) -> None:
    size = encoded_size(encoded(0))
    # Around the fourth event's last byte: a run of the intake must end where add's would.
    for bound in range(4 * size - 3, 4 * size + 3):
        extra = ENVELOPE_BYTES if limit == "byte_limit" else 0
        options: dict[str, Any] = {"batch_size": 8, limit: bound + extra}
        by_intake, by_add = FakeHttpClient(), FakeHttpClient()
        fast, general = emitter(by_intake, **options), emitter(by_add, **options)
        intake = fast.intake()
        for n in range(6):
            data = encoded(n)
            assert outcome(intake, data[1:]) == outcome(general.add, orjson.loads(data))
            assert fast.pending == general.pending
        await fast.flush()
        await general.flush()
        assert sent(by_intake) == sent(by_add)
        await fast.close()
        await general.close()


async def test_a_staged_run_is_counted_and_waited_for() -> None:
    client = FakeHttpClient()
    sink = emitter(client, batch_size=10, buffer_capacity=4)
    intake = sink.intake()
    events = [encoded(n) for n in range(3)]
    for data in events:
        intake(data[1:])
    assert sink.pending == (3, sum(encoded_size(data) for data in events))
    # Room for one more, not for two: wait_for_room counts the staged run.
    await asyncio.wait_for(sink.wait_for_room(1), 1)
    waiting = asyncio.ensure_future(sink.wait_for_room(2))
    await asyncio.sleep(0)
    assert not waiting.done()
    await sink.flush()
    await asyncio.wait_for(waiting, 1)
    assert [len(events) for events in sent(client)] == [3]
    await sink.close()


async def test_wait_for_room_is_a_finished_future_while_there_is_room() -> None:
    sink = emitter(FakeHttpClient(), buffer_capacity=2)
    await sink.wait_for_room()  # before start: waits the long way, there is room
    sink.intake()(encoded(0)[1:])
    room = sink.wait_for_room()
    assert isinstance(room, asyncio.Future)
    assert room.done()
    await room
    sink.intake()(encoded(1)[1:])
    full = asyncio.ensure_future(sink.wait_for_room())
    await asyncio.sleep(0)
    assert not full.done()
    await sink.flush()
    await asyncio.wait_for(full, 1)
    await sink.close()


async def test_a_staged_run_goes_out_on_the_flush_interval() -> None:
    client = FakeHttpClient()
    sink = AsyncEmitter(URL, client=client, batch_size=50, flush_interval_s=0.01)
    intake = sink.intake()
    for n in range(5):
        intake(encoded(n)[1:])
    await wait_until(lambda: sum(map(len, sent(client))) == 5, 5, "the run was not sent")
    assert sent(client) == [[orjson.loads(encoded(n)) for n in range(5)]]
    await sink.close()


async def test_close_sends_a_staged_run_and_the_intake_then_refuses() -> None:
    client = FakeHttpClient()
    delivered: list[PendingEvent] = []
    sink = emitter(client, batch_size=50, on_success=delivered.extend)
    intake = sink.intake()
    for n in range(3):
        intake(encoded(n)[1:])
    await sink.close()
    assert len(delivered) == 3
    with pytest.raises(EmitterClosedError):
        intake(encoded(9)[1:])


class CountingStore:
    """A store that is not the in-memory one: every event must reach it when taken."""

    def __init__(self) -> None:
        self.events: list[PendingEvent] = []
        self.batch_size = 50
        self.capacity = 100

    def __len__(self) -> int:
        return len(self.events)

    def add(self, event: PendingEvent) -> None:
        self.events.append(event)

    def full_batch(self) -> list[PendingEvent] | None:
        return self.batch_of(self.batch_size) if len(self.events) >= self.batch_size else None

    def batch_of(self, count: int) -> list[PendingEvent]:
        taken, self.events = self.events[:count], self.events[count:]
        return taken

    def cleanup(self, batch: Any, *, delivered: bool) -> None:
        pass


async def test_a_store_of_its_own_holds_each_event_as_it_is_taken() -> None:
    store = CountingStore()
    sink = emitter(FakeHttpClient(), store=store)
    intake = sink.intake()
    for n in range(3):
        intake(encoded(n)[1:])
        assert len(store) == n + 1
    await sink.close()
