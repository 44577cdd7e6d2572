"""The emitter core against the local collector over real HTTP, with injected faults.

The collector validates every body against the Iglu ``payload_data`` schema; a bad body
would land in its ``bad`` list, so each test also asserts that list is empty.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from tracking_common.emitter import (
    AsyncEmitter,
    DeliveryFailure,
    FailureReason,
    PendingEvent,
    RetryPolicy,
    Tracker,
)
from tracking_common.emitter.testing import FakeSleep

from tests.support.collector import RunningCollector


class Outcomes:
    def __init__(self) -> None:
        self.delivered: list[PendingEvent] = []
        self.failed: list[tuple[PendingEvent, DeliveryFailure]] = []

    def on_success(self, events: Sequence[PendingEvent]) -> None:
        self.delivered.extend(events)

    def on_failure(self, sent: int, events: Sequence[PendingEvent], f: DeliveryFailure) -> None:
        self.failed.extend((event, f) for event in events)


@pytest.fixture
async def rig(collector: RunningCollector) -> AsyncIterator[tuple[AsyncEmitter, Outcomes]]:
    outcomes = Outcomes()
    emitter = AsyncEmitter(
        collector.base_url,
        batch_size=10,
        flush_interval_s=None,
        read_timeout_s=0.5,
        sleep=FakeSleep(),
        retry=RetryPolicy.up_to(5),
        on_success=outcomes.on_success,
        on_failure=outcomes.on_failure,
    )
    yield emitter, outcomes
    await emitter.close(5.0)


def track(emitter: AsyncEmitter, count: int) -> list[str]:
    tracker = Tracker(emitter, namespace="it", app_id="emitter-it")
    eids = [
        tracker.track_page_view(
            f"https://example.com/{n}",
            title="Page",
            entities=[{"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"n": n}}],
        )
        for n in range(count)
    ]
    eids.append(tracker.track_struct_event("shop", "add", label="sku", value=2.5))
    eids.append(
        tracker.track_self_describing_event(
            {"schema": "iglu:com.acme/click/jsonschema/1-0-0", "data": {"id": "b"}}
        )
    )
    eids.append(tracker.track_page_ping("https://example.com/0", max_y_offset=300))
    return eids


async def assert_all_good(collector: RunningCollector, eids: list[str]) -> None:
    await collector.wait_for_count(len(eids))
    assert sorted(set(await collector.eids())) == sorted(eids)
    assert await collector.bad() == []


async def test_happy_path_every_body_is_valid(
    collector: RunningCollector, rig: tuple[AsyncEmitter, Outcomes]
) -> None:
    emitter, outcomes = rig
    eids = track(emitter, 25)
    await emitter.flush()
    await assert_all_good(collector, eids)
    assert len(outcomes.delivered) == len(eids)


async def test_500_then_200(
    collector: RunningCollector, rig: tuple[AsyncEmitter, Outcomes]
) -> None:
    emitter, outcomes = rig
    await collector.inject({"status": 500, "count": 2})
    eids = track(emitter, 5)
    await emitter.flush()
    await assert_all_good(collector, eids)
    assert outcomes.failed == []


async def test_timeout_is_retried(
    collector: RunningCollector, rig: tuple[AsyncEmitter, Outcomes]
) -> None:
    emitter, outcomes = rig
    await collector.inject({"delay_s": 1.5, "count": 1})
    eids = track(emitter, 3)
    await emitter.flush()
    # The delayed request may still have been accepted: duplicates are allowed, loss is not.
    await collector.wait_for_count(len(eids))
    assert set(eids) <= set(await collector.eids())
    assert outcomes.failed == []


async def test_dropped_connection_is_retried(
    collector: RunningCollector, rig: tuple[AsyncEmitter, Outcomes]
) -> None:
    emitter, outcomes = rig
    await collector.inject({"drop_connection": True, "count": 1})
    eids = track(emitter, 3)
    await emitter.flush()
    await assert_all_good(collector, eids)
    assert outcomes.failed == []


async def test_413_splits_down_to_what_the_collector_takes(
    collector: RunningCollector, rig: tuple[AsyncEmitter, Outcomes]
) -> None:
    emitter, outcomes = rig
    await collector.inject({"status": 413, "max_events": 3})
    eids = track(emitter, 17)
    await emitter.flush()
    await assert_all_good(collector, eids)
    assert outcomes.failed == []


async def test_400_for_one_event_fails_only_that_one(
    collector: RunningCollector, rig: tuple[AsyncEmitter, Outcomes]
) -> None:
    emitter, outcomes = rig
    bad = str(uuid.UUID(int=7))
    await collector.inject({"status": 400, "when_eid": [bad]})
    tracker = Tracker(emitter, namespace="it")
    good = [tracker.track_page_view(f"https://example.com/{n}") for n in range(9)]
    tracker.track_page_view("https://example.com/bad", event_id=uuid.UUID(bad))
    await emitter.flush()
    await assert_all_good(collector, good)
    [(event, failure)] = outcomes.failed
    assert event.event_id == bad
    assert failure.reason is FailureReason.NON_RETRYABLE_STATUS
    assert failure.status == 400


async def test_get_mode(collector: RunningCollector) -> None:
    emitter = AsyncEmitter(collector.base_url, method="get", flush_interval_s=None)
    eids = track(emitter, 3)
    await emitter.flush()
    await emitter.close()
    await assert_all_good(collector, eids)
