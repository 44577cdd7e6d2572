"""Scaling, shutdown, crashes and backpressure of real forwarder processes."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from tests.integration.forwarder_service.conftest import StartForwarder, Topics
from tests.integration.forwarder_service.forwarder_it import (
    all_committed,
    committed,
    produce_events,
    wait_until,
)
from tests.support.collector import RunningCollector

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]


async def test_two_instances_share_the_partitions_and_a_rebalance_loses_nothing(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    # Slow answers keep requests in flight when the second instance's arrival revokes them.
    await collector.inject({"delay_s": 0.3})
    first_eids = await produce_events(kafka_bootstrap, topics.events, 300)
    first = await start_forwarder(FORWARDER_BATCH_MAX_EVENTS="20")
    await collector.wait_for_count(20, timeout_s=30)
    second = await start_forwarder()  # joining makes the group rebalance

    async def both_assigned() -> bool:
        consumed = [
            await f.metric("tracking_forwarder_events_consumed_total") for f in (first, second)
        ]
        return all(value > 0 for value in consumed)

    more_eids = await produce_events(kafka_bootstrap, topics.events, 300)
    await wait_until(both_assigned, timeout_s=30, what="both instances consuming")
    await collector.clear_faults()
    # The first leaves: the second takes over its partition from the committed offset.
    assert await first.stop() == 0, first.log()
    last_eids = await produce_events(kafka_bootstrap, topics.events, 200)
    await wait_until(
        lambda: all_committed(kafka_bootstrap, topics.group, topics.events),
        timeout_s=45,
        what="commit of every partition's end",
    )
    delivered = Counter(await collector.eids())
    assert set(delivered) == set(first_eids + more_eids + last_eids)
    assert await second.stop() == 0, second.log()


async def test_sigterm_drains_in_flight_work_commits_and_exits_cleanly(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    # Slow answers keep batches in flight when the signal arrives.
    await collector.inject({"delay_s": 0.5, "count": 6})
    eids = await produce_events(kafka_bootstrap, topics.events, 200)
    forwarder = await start_forwarder()

    async def all_taken_not_all_delivered() -> bool:
        taken = await forwarder.metric("tracking_forwarder_events_consumed_total")
        return taken == 200

    await wait_until(all_taken_not_all_delivered, timeout_s=30, what="every record taken")
    assert await collector.count() < 200
    assert await forwarder.stop() == 0, forwarder.log()
    assert set(await collector.eids()) == set(eids)
    assert await all_committed(kafka_bootstrap, topics.group, topics.events)


async def test_a_second_sigterm_exits_without_committing_undelivered_work(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    await collector.inject({"status": 503})  # nothing can be delivered
    await produce_events(kafka_bootstrap, topics.events, 50)
    forwarder = await start_forwarder()

    async def retrying() -> bool:
        return await forwarder.metric("tracking_forwarder_retries_total") > 0

    await wait_until(retrying, timeout_s=30, what="retries")
    forwarder.signal(signal.SIGTERM)

    async def draining() -> bool:
        return (await forwarder.get("/readyz"))[0] == 503

    # Two signals sent at once may arrive as one: the second follows the drain's start.
    await wait_until(draining, timeout_s=10, what="drain started")
    forwarder.signal(signal.SIGTERM)
    assert await forwarder.wait_exit(10) == 3, forwarder.log()
    assert "second SIGTERM" in forwarder.log()
    assert await committed(kafka_bootstrap, topics.group) == {}


async def test_the_shutdown_deadline_exits_without_committing_undelivered_work(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    await collector.inject({"status": 503})  # nothing can be delivered
    await produce_events(kafka_bootstrap, topics.events, 50)
    forwarder = await start_forwarder(FORWARDER_SHUTDOWN_TIMEOUT_S="2")

    async def retrying() -> bool:
        return await forwarder.metric("tracking_forwarder_retries_total") > 0

    await wait_until(retrying, timeout_s=30, what="retries")
    forwarder.signal(signal.SIGTERM)
    assert await forwarder.wait_exit(15) == 3, forwarder.log()
    assert "undelivered record(s); they stay uncommitted" in forwarder.log()
    assert await committed(kafka_bootstrap, topics.group) == {}


async def test_sigkill_mid_stream_then_restart_delivers_every_event_at_least_once(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    # Slow answers (at most 4 x 20 events per 0.2 s) keep the stream going when the kill lands.
    await collector.inject({"delay_s": 0.2})
    eids = await produce_events(kafka_bootstrap, topics.events, 600)
    first = await start_forwarder(FORWARDER_BATCH_MAX_EVENTS="20")
    await collector.wait_for_count(40, timeout_s=30)
    await first.kill()
    assert await collector.count() < 600
    await collector.clear_faults()
    second = await start_forwarder()
    await wait_until(
        lambda: all_committed(kafka_bootstrap, topics.group, topics.events),
        timeout_s=45,
        what="commit of every partition's end",
    )
    delivered = Counter(await collector.eids())
    assert set(delivered) == set(eids)  # none lost; some may be delivered twice
    assert await second.stop() == 0, second.log()


async def test_backlog_stays_bounded_while_the_collector_is_down(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    await collector.inject({"status": 503})  # until cleared
    eids = await produce_events(kafka_bootstrap, topics.events, 2000)
    bound, poll = 200, 50
    forwarder = await start_forwarder(
        FORWARDER_MAX_BACKLOG_EVENTS=str(bound),
        FORWARDER_MAX_POLL_RECORDS=str(poll),
    )

    async def paused() -> bool:
        return await forwarder.metric("tracking_forwarder_paused_partitions") == 2

    await wait_until(paused, timeout_s=30, what="every partition paused")

    async def full_lag() -> bool:
        # Nothing is committed, and the lag counts what is on the broker, not what was fetched.
        return await forwarder.metric("tracking_forwarder_consumer_lag") == 2000

    await wait_until(full_lag, timeout_s=30, what="consumer lag of the whole backlog")
    for _ in range(10):
        backlog = await forwarder.metric("tracking_forwarder_backlog_events")
        assert backlog <= bound + poll
        assert await forwarder.metric("tracking_forwarder_events_consumed_total") <= bound + poll
    assert await collector.count() == 0
    await collector.clear_faults()
    await collector.wait_for_count(2000, timeout_s=60)
    assert set(await collector.eids()) == set(eids)

    async def resumed() -> bool:
        return await forwarder.metric("tracking_forwarder_paused_partitions") == 0

    await wait_until(resumed, timeout_s=30, what="partitions resumed")
    assert await forwarder.stop() == 0, forwarder.log()
