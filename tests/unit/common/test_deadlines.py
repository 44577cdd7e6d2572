"""Deadlines of one length, checked by one timer: expiry, stopping, order, the loop they run on."""

from __future__ import annotations

import asyncio

import pytest
from tracking_common.deadlines import Deadlines

from tests.support.waiting import wait_until


async def test_a_deadline_expires_after_its_timeout_and_not_before() -> None:
    deadlines = Deadlines(0.05, resolution_s=0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    expired: list[float] = []

    deadlines.start("a", lambda: expired.append(loop.time()))
    await wait_until(lambda: expired, 5, "the deadline never expired")

    assert expired[0] - started >= 0.05
    assert deadlines.pending == 0


async def test_a_stopped_deadline_never_expires() -> None:
    deadlines = Deadlines(0.05, resolution_s=0.01)
    expired: list[str] = []
    deadlines.start("stopped", lambda: expired.append("stopped"))
    deadlines.start("kept", lambda: expired.append("kept"))

    deadlines.stop("stopped")
    await wait_until(lambda: expired, 5, "the kept deadline never expired")

    assert expired == ["kept"]
    deadlines.stop("kept")  # after expiry: nothing happens


async def test_deadlines_expire_in_the_order_they_started() -> None:
    deadlines = Deadlines(0.05, resolution_s=0.01)
    expired: list[int] = []
    for n in range(5):
        deadlines.start(n, lambda n=n: expired.append(n))  # type: ignore[misc]
    await wait_until(lambda: len(expired) == 5, 5, "not every deadline expired")

    assert expired == [0, 1, 2, 3, 4]


async def test_a_later_deadline_waits_for_its_own_time() -> None:
    deadlines = Deadlines(0.2, resolution_s=0.01)
    expired: list[str] = []
    deadlines.start("first", lambda: expired.append("first"))
    await wait_until(lambda: deadlines.pending == 1, 5, "not started")
    loop = asyncio.get_running_loop()
    second_started = loop.time()
    deadlines.start("second", lambda: expired.append(f"second {loop.time() - second_started}"))

    await wait_until(lambda: len(expired) == 2, 5, "the deadlines never expired")

    assert expired[0] == "first"
    assert float(expired[1].split()[1]) >= 0.2


def test_each_event_loop_has_its_own_deadlines() -> None:
    deadlines = Deadlines(60, resolution_s=0.01)

    async def start_one() -> int:
        deadlines.start(object(), lambda: None)
        return deadlines.pending

    assert asyncio.run(start_one()) == 1
    assert asyncio.run(start_one()) == 1  # the first loop's deadline is dropped with it


def test_lengths_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Deadlines(0)
    with pytest.raises(ValueError, match="positive"):
        Deadlines(1, resolution_s=0)
