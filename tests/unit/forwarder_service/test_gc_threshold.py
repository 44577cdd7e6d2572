"""The young GC threshold stays above what a full backlog holds (docs/forwarder.md, GC)."""

from __future__ import annotations

import gc
from collections.abc import Hashable, Iterator

import pytest
from aiokafka.structs import ConsumerRecord
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline
from forwarder_service.settings import TRACKED_OBJECTS_PER_RECORD, ForwarderSettings
from forwarder_service.sink import build_sink
from tracking_common.emitter.testing import FakeHttpClient
from tracking_common.gc_tuning import GEN0_THRESHOLD
from tracking_common.record import encode_record, record_headers

from tests.support.forwarder_fakes import TP0, FakeDeadLetters, InMemoryMetrics, event_payload

pytestmark = pytest.mark.timeout(10)


def _consumer_records(count: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Records shaped exactly as aiokafka's fetcher builds them (header tuples included)."""
    result = []
    for offset in range(count):
        payload = event_payload()
        value = encode_record(payload, source="v1")
        key = payload["eid"].encode()
        headers = tuple((name, bytes(raw)) for name, raw in record_headers(payload["eid"]))
        result.append(
            ConsumerRecord(
                topic=TP0.topic,
                partition=TP0.partition,
                offset=offset,
                timestamp=1_700_000_000_000,
                timestamp_type=0,
                key=key,
                value=value,
                checksum=None,
                serialized_key_size=len(key),
                serialized_value_size=len(value),
                headers=headers,
            )
        )
    return result


@pytest.fixture
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


@pytest.mark.usefixtures("gc_paused")
async def test_a_held_record_keeps_at_most_the_counted_container_objects() -> None:
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    tracker.assign([TP0])
    pipeline = Pipeline(
        tracker=tracker, dead_letters=FakeDeadLetters(), metrics=InMemoryMetrics().metrics
    )
    settings = ForwarderSettings(forwarder_linger_ms=60_000)  # nothing is sent meanwhile
    sink = build_sink(settings, listener=pipeline, client=FakeHttpClient())
    pipeline.bind(sink)
    await pipeline.start()
    count = 2_000
    taken = _consumer_records(count)
    before = len(gc.get_objects())
    for first in range(0, count, 400):
        assert pipeline.accept(TP0, taken[first : first + 400]) is None
    held = len(gc.get_objects()) - before
    assert sink.backlog()[0] == count
    # The records were built before counting: a held record's own objects are aiokafka's
    # record, its header container and header tuples (a ConsumerRecord or, in the service,
    # the batch's record with its header list: as many either way).
    per_record = held / count + 1 + 1 + len(taken[0].headers)
    assert per_record <= TRACKED_OBJECTS_PER_RECORD
    await sink.close(1.0)
    await pipeline.stop()


def test_the_young_threshold_is_above_a_full_backlog() -> None:
    settings = ForwarderSettings()
    held = (
        settings.forwarder_max_backlog_events
        + settings.forwarder_max_poll_records
        + settings.forwarder_batch_max_events
    )
    assert settings.young_gc_threshold >= held * TRACKED_OBJECTS_PER_RECORD
    tiny = ForwarderSettings(forwarder_max_backlog_events=10, forwarder_max_poll_records=10)
    assert tiny.young_gc_threshold == GEN0_THRESHOLD
