"""Delivery and failure classes on the real broker and the local collector."""

from __future__ import annotations

from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tracking_common.record import encode_record, partition_key

from tests.integration.forwarder_service.conftest import StartForwarder, Topics
from tests.integration.forwarder_service.forwarder_it import (
    POISON,
    TRACEPARENT,
    all_committed,
    committed,
    odd_record,
    payload,
    produce_events,
    wait_for_all_committed,
    wait_until,
)
from tests.support.collector import RunningCollector
from tests.support.kafka import consume_all, produce, unique_name

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]


async def test_happy_path_delivers_every_event_exactly_once_and_commits(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    eids = await produce_events(kafka_bootstrap, topics.events, 300)
    forwarder = await start_forwarder()
    await collector.wait_for_count(300, timeout_s=60)
    await wait_for_all_committed(kafka_bootstrap, topics.group, topics.events)
    assert await forwarder.stop() == 0, forwarder.log()
    assert Counter(await collector.eids()) == Counter(eids)


async def test_collector_errors_for_a_while_then_recovers_losing_nothing(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    await collector.inject({"status": 500, "count": 8})
    await collector.inject({"status": 503, "duration_s": 2, "retry_after": "1"})
    eids = await produce_events(kafka_bootstrap, topics.events, 200)
    forwarder = await start_forwarder()
    await collector.wait_for_count(200, timeout_s=60)
    assert set(await collector.eids()) == set(eids)
    await wait_until(
        lambda: all_committed(kafka_bootstrap, topics.group, topics.events),
        timeout_s=30,
        what="commit",
    )
    assert await forwarder.metric("tracking_forwarder_retries_total") > 0
    assert await forwarder.metric("tracking_forwarder_events_dead_lettered_total") == 0
    assert await forwarder.stop() == 0, forwarder.log()


async def test_rejected_events_go_to_the_dead_letter_topic_with_their_context(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    eids = await produce_events(kafka_bootstrap, topics.events, 120)
    rejected = {eids[7], eids[70]}
    await collector.inject({"status": 400, "when_eid": sorted(rejected)})
    forwarder = await start_forwarder()
    await collector.wait_for_count(118, timeout_s=60)
    letters = await consume_all(kafka_bootstrap, topics.dlq, expected=2, timeout_s=30)
    await wait_until(
        lambda: all_committed(kafka_bootstrap, topics.group, topics.events),
        timeout_s=30,
        what="commit",
    )
    assert (
        await forwarder.metric(
            "tracking_forwarder_events_dead_lettered_total", reason="non_retryable_status"
        )
        == 2
    )
    assert await forwarder.stop() == 0, forwarder.log()
    assert set(await collector.eids()) == set(eids) - rejected
    assert len(letters) == 2
    # Offsets repeat across partitions: an original is found by (partition, offset).
    originals = {
        (r.partition, r.offset): r
        for r in await consume_all(kafka_bootstrap, topics.events, expected=120)
    }
    found = set()
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        found.add(headers["event-id"])
        assert headers["__connect.errors.topic"] == topics.events
        assert headers["__connect.errors.stage"] == "HTTP_SEND"
        assert headers["__connect.errors.exception.class.name"]
        assert headers["__connect.errors.exception.message"]
        assert headers["x-forwarder.error.class"] == "non_retryable_status"
        assert headers["x-forwarder.http.status"] == "400"
        assert int(headers["x-forwarder.attempts"]) >= 1
        first = int(headers["x-forwarder.first_failure_ms"])
        assert 0 < first <= int(headers["x-forwarder.last_failure_ms"])
        assert headers["traceparent"] == TRACEPARENT  # the original headers are kept
        where = (
            int(headers["__connect.errors.partition"]),
            int(headers["__connect.errors.offset"]),
        )
        original = originals[where]
        assert (letter.key, letter.value) == (original.key, original.value)
    assert found == rejected


async def test_a_poison_record_is_dead_lettered_and_consumption_goes_on(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    eids = await produce_events(kafka_bootstrap, topics.events, 60, poison_at=[0, 31])
    odd = odd_record()
    await produce(kafka_bootstrap, topics.events, [odd], key=b"odd")
    eids += await produce_events(kafka_bootstrap, topics.events, 10)
    forwarder = await start_forwarder()
    await collector.wait_for_count(68, timeout_s=60)
    letters = await consume_all(kafka_bootstrap, topics.dlq, expected=3, timeout_s=30)
    await wait_until(
        lambda: all_committed(kafka_bootstrap, topics.group, topics.events),
        timeout_s=30,
        what="commit",
    )
    assert set(await collector.eids()) == set(eids)
    assert Counter(letter.value for letter in letters) == Counter([POISON, POISON, odd])
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        assert headers["x-forwarder.error.class"] == "invalid_record"
        assert headers["__connect.errors.exception.class.name"]
        assert headers["__connect.errors.stage"] == "DESERIALIZE"
        assert headers["x-forwarder.attempts"] == "0"
        assert "x-forwarder.http.status" not in headers
        if letter.value == POISON:
            assert headers["__connect.errors.exception.class.name"] == "RecordContractError"
    assert (
        await forwarder.metric(
            "tracking_forwarder_events_dead_lettered_total", reason="invalid_record"
        )
        == 3
    )
    assert await forwarder.stop() == 0, forwarder.log()


async def test_records_of_an_aborted_transaction_are_never_forwarded(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    # The forwarder reads committed records only (isolation_level read_committed): the records
    # of an aborted transaction and the transaction markers are skipped, whatever batch they
    # share a fetch with, and the committed offsets still reach each partition's end.
    eids = await produce_events(kafka_bootstrap, topics.events, 30)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("forwarder-tx")
    )
    await producer.start()

    async def send(events: list[dict[str, str]]) -> None:
        for event in events:
            value, key = encode_record(event, source="internal"), partition_key(event)
            await producer.send(topics.events, value, key=key)

    aborted, committed = [payload() for _ in range(20)], [payload() for _ in range(20)]
    try:
        await producer.begin_transaction()
        await send(aborted)
        await producer.abort_transaction()
        async with producer.transaction():
            await send(committed)
    finally:
        await producer.stop()
    eids += [event["eid"] for event in committed]
    eids += await produce_events(kafka_bootstrap, topics.events, 30)
    forwarder = await start_forwarder()
    await collector.wait_for_count(80, timeout_s=60)
    await wait_for_all_committed(kafka_bootstrap, topics.group, topics.events)
    assert Counter(await collector.eids()) == Counter(eids)
    assert await forwarder.metric("tracking_forwarder_events_dead_lettered_total") == 0
    assert await forwarder.stop() == 0, forwarder.log()


async def test_oversize_batches_are_split_and_everything_arrives(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    await collector.inject({"status": 413, "max_events": 10})
    eids = await produce_events(kafka_bootstrap, topics.events, 150)
    forwarder = await start_forwarder()
    await collector.wait_for_count(150, timeout_s=60)
    assert set(await collector.eids()) == set(eids)
    assert await forwarder.metric("tracking_forwarder_events_dead_lettered_total") == 0
    assert await forwarder.stop() == 0, forwarder.log()


async def test_setup_failures_pause_without_dead_lettering_then_resume_when_cleared(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    await collector.inject({"status": 401})
    eids = await produce_events(kafka_bootstrap, topics.events, 100)
    forwarder = await start_forwarder(ready_path="/healthz")

    async def paused() -> bool:
        return (
            await forwarder.metric("tracking_forwarder_setup_failures_total") > 0
            and await forwarder.metric("tracking_forwarder_paused_partitions") == 2
        )

    await wait_until(paused, timeout_s=30, what="setup failure and paused partitions")
    status, body = await forwarder.get("/readyz")
    assert status == 503
    assert '"collector_setup": false' in body
    # The gauge reads the probe's checks: it falls with the setup failure, not only on rebalance.
    assert await forwarder.metric("tracking_forwarder_ready") == 0
    assert await collector.count() == 0
    await collector.clear_faults()
    await collector.wait_for_count(100, timeout_s=60)
    assert set(await collector.eids()) == set(eids)

    async def resumed() -> bool:
        return await forwarder.metric("tracking_forwarder_paused_partitions") == 0

    await wait_until(resumed, timeout_s=30, what="partitions resumed")
    assert await forwarder.metric("tracking_forwarder_ready") == 1
    assert await forwarder.metric("tracking_forwarder_events_dead_lettered_total") == 0
    assert await forwarder.stop() == 0, forwarder.log()


async def test_admin_port_serves_probes_and_the_named_metrics(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    await produce_events(kafka_bootstrap, topics.events, 20)
    forwarder = await start_forwarder()
    await collector.wait_for_count(20, timeout_s=60)
    assert (await forwarder.get("/healthz"))[0] == 200
    names = (
        "tracking_forwarder_events_consumed_total",
        "tracking_forwarder_events_delivered_total",
        "tracking_forwarder_batch_size_events_bucket",
        "tracking_forwarder_request_duration_seconds_bucket",
        "tracking_forwarder_paused_partitions",
        "tracking_forwarder_backlog_events",
        "tracking_forwarder_backlog_bytes",
        "tracking_forwarder_commits_total",
        f'tracking_forwarder_consumer_lag{{partition="0",topic="{topics.events}"}}',
        "tracking_forwarder_ready 1.0",
    )

    async def every_metric() -> bool:
        _, text = await forwarder.get("/metrics")
        return all(name in text for name in names)

    await wait_until(every_metric, timeout_s=30, what="every named metric")
    assert await forwarder.stop() == 0, forwarder.log()


async def test_an_event_refused_as_too_large_on_its_own_is_dead_lettered_not_retried(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    await collector.inject({"status": 413})  # even a single event: until cleared
    await produce_events(kafka_bootstrap, topics.events, 12)
    forwarder = await start_forwarder()
    letters = await consume_all(kafka_bootstrap, topics.dlq, expected=12, timeout_s=30)
    assert len(letters) == 12
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        assert headers["x-forwarder.error.class"] == "oversize"
        assert headers["x-forwarder.http.status"] == "413"
    await wait_until(
        lambda: all_committed(kafka_bootstrap, topics.group, topics.events),
        timeout_s=30,
        what="commit",
    )
    assert await collector.count() == 0
    assert await forwarder.stop() == 0, forwarder.log()


async def test_an_unwritable_dead_letter_topic_stops_the_service_without_skipping(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    # The broker refuses every dead letter: this topic takes no record above 64 bytes.
    dlq = unique_name("fwd-tiny-dlq")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(dlq, 1, 1, topic_configs={"max.message.bytes": "64"})])
    finally:
        await admin.close()
    forwarder = await start_forwarder(DLQ_TOPIC=dlq, FORWARDER_DLQ_TIMEOUT_S="5")
    await produce_events(kafka_bootstrap, topics.events, 40, poison_at=[0, 1, 2, 3])
    assert await forwarder.wait_exit(30) == 1, forwarder.log()
    assert "dead-letter topic did not acknowledge" in forwarder.log()
    records = await consume_all(kafka_bootstrap, topics.events, expected=40)
    poisons = [(r.partition, r.offset) for r in records if r.value == POISON]
    offsets = await committed(kafka_bootstrap, topics.group)
    for partition, offset in poisons:
        assert offsets.get(partition, 0) <= offset  # never committed past a lost dead letter
