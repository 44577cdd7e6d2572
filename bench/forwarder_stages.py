"""The forwarder's own cost per record, by stage, in one process without Kafka or HTTP.

The benchmark's records (``bench.bench_forwarder``) are fed to the real :class:`Pipeline` in
slices of ``max_poll_records``, over the real :class:`HttpSink` and emitter core whose HTTP
client answers 200 at once, with the garbage collector tuned as the service tunes it. Each
stage is timed with ``process_time_ns`` around it (this process's CPU time: everything here
runs on one thread without I/O, and time the shared machine gives other processes does not
count, where ``perf_counter_ns`` swung by 1.5x between runs), best of ``--rounds``, and
printed in microseconds per record:

- ``contract check``: ``tracking_common.record.check_records`` alone, slice by slice;
- ``take``: ``Pipeline.accept`` for every slice (check, tags, the slice for the offset
  tracker, the emitter's intake, batching);
- ``deliver``: from the last slice taken until every record is settled (bodies spliced, posted
  to the fake client, settled per slice, metrics and spans);
- ``aiokafka record``: building aiokafka's ``ConsumerRecord`` from a fetched batch, with and
  without CRC checks (what the fetcher does per record for the raw consumer);
- ``aiokafka fetch, batch records``: ``FetchResult.getall`` as the forwarder runs it
  (:func:`~forwarder_service.batch_records.use_batch_records`: the batches' own records, a
  batch at a time, CRC checked), in slices of ``max_poll_records``.

    uv run python -m bench.forwarder_stages [--records 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Hashable, Sequence

from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import FetchResult, PartitionRecords
from aiokafka.record.memory_records import MemoryRecords
from forwarder_service.batch_records import batch_records
from forwarder_service.metrics import ForwarderMetrics
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline
from forwarder_service.settings import ForwarderSettings
from forwarder_service.sink import build_sink
from opentelemetry.sdk.metrics import MeterProvider
from tracking_common.emitter.testing import FakeHttpClient
from tracking_common.gc_tuning import tune_gc
from tracking_common.record import check_records

from bench.bench_forwarder import _PLACEHOLDER, _template
from tests.support.forwarder_fakes import (
    FakeAssignment,
    FakeDeadLetters,
    FakePartitionState,
    FakeRecord,
    record_batch,
)

TP = TopicPartition("bench", 0)


def bench_records(count: int) -> list[FakeRecord]:
    """``count`` benchmark records of one partition, each with its own event id."""
    templates = [_template(n) for n in range(64)]
    placeholder = _PLACEHOLDER.encode()
    result = []
    for offset in range(count):
        value, key, headers = templates[offset % 64]
        eid = str(uuid.UUID(int=offset + 1, version=4)).encode()
        result.append(
            FakeRecord(
                topic=TP.topic,
                partition=TP.partition,
                offset=offset,
                timestamp=1_700_000_000_000,
                key=key,
                value=value.replace(placeholder, eid),
                headers=[(name, raw.replace(placeholder, eid)) for name, raw in headers],
            )
        )
    return result


def _per_record_us(elapsed_ns: int, count: int) -> float:
    return elapsed_ns / count / 1000


def time_check(records: Sequence[FakeRecord], step: int) -> float:
    """Microseconds per record of the contract check alone, a slice of ``step`` at a time."""
    values = [record.value for record in records]
    slices = [values[first : first + step] for first in range(0, len(values), step)]
    started = time.process_time_ns()
    for piece in slices:
        check_records(piece)
    return _per_record_us(time.process_time_ns() - started, len(values))


async def time_pipeline(
    records: Sequence[FakeRecord], settings: ForwarderSettings
) -> tuple[float, float]:
    """Microseconds per record to take every slice, then to deliver and settle them all."""
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    tracker.assign([TP])
    metrics = ForwarderMetrics(MeterProvider().get_meter("bench"))
    pipeline = Pipeline(tracker=tracker, dead_letters=FakeDeadLetters(), metrics=metrics)
    sink = build_sink(settings, listener=pipeline, client=FakeHttpClient())
    pipeline.bind(sink)
    await pipeline.start()
    await sink.start()
    step = settings.forwarder_max_poll_records
    started = time.process_time_ns()
    for first in range(0, len(records), step):
        if pipeline.accept(TP, records[first : first + step]) is not None:
            raise RuntimeError("the sink refused records: raise its capacity")
    taken = time.process_time_ns()
    if not await pipeline.drain(None, timeout_s=120):
        raise RuntimeError("not every record was settled")
    settled = time.process_time_ns()
    await sink.close(1.0)
    await pipeline.stop()
    return (
        _per_record_us(taken - started, len(records)),
        _per_record_us(settled - taken, len(records)),
    )


def time_consumer_records(records: Sequence[FakeRecord], *, check_crcs: bool) -> float:
    """Microseconds per record for aiokafka to turn a fetched batch into ConsumerRecords."""
    # A batch per 500 records, at the records' own offsets, fetched from its first: every record
    # becomes a ConsumerRecord (none is skipped as consumed already).
    batches = [
        (first, record_batch(records[first : first + 500], records[first].offset))
        for first in range(0, len(records), 500)
    ]
    started = time.process_time_ns()
    for first, batch in batches:
        partition = PartitionRecords(
            TP,
            MemoryRecords(batch),
            [],  # no aborted transactions
            records[first].offset,
            None,  # key deserializer
            None,  # value deserializer
            check_crcs,
            0,  # READ_UNCOMMITTED
        )
        for _ in partition:
            pass
    return _per_record_us(time.process_time_ns() - started, len(records))


def time_batch_records(records: Sequence[FakeRecord], step: int) -> float:
    """Microseconds per record for the forwarder's fetcher to hand out a fetched partition's
    records, ``step`` at a time (``use_batch_records`` applied, as the service applies it)."""
    fetched = b"".join(
        record_batch(records[first : first + 500], records[first].offset)
        for first in range(0, len(records), 500)
    )
    state = FakePartitionState()
    with batch_records():
        partition = PartitionRecords(TP, MemoryRecords(fetched), [], 0, None, None, True, 0)
        result = FetchResult(
            TP, assignment=FakeAssignment(state), partition_records=partition, backoff=0
        )
        started = time.process_time_ns()
        while result.has_more():
            result.getall(step)
        elapsed = time.process_time_ns() - started
    if state.position != len(records):
        raise RuntimeError(f"the fetcher stopped at {state.position} of {len(records)}")
    return _per_record_us(elapsed, len(records))


def measure(count: int, rounds: int) -> dict[str, float]:
    """The best of ``rounds`` timings of each stage over ``count`` records, us per record."""
    records = bench_records(count)
    settings = ForwarderSettings(
        forwarder_max_backlog_events=count, forwarder_max_backlog_bytes=1 << 31
    )
    tune_gc(gen0_threshold=settings.young_gc_threshold)  # as forwarder-service does
    best: dict[str, float] = {}

    def keep(name: str, value: float) -> None:
        best[name] = min(best.get(name, value), value)

    for _ in range(rounds):
        keep("contract check", time_check(records, settings.forwarder_max_poll_records))
        take, deliver = asyncio.run(time_pipeline(records, settings))
        keep("take (check + intake + offsets)", take)
        keep("deliver (splice, post, settle)", deliver)
        keep("aiokafka record, check_crcs=True", time_consumer_records(records, check_crcs=True))
        keep("aiokafka record, check_crcs=False", time_consumer_records(records, check_crcs=False))
        keep(
            "aiokafka fetch, batch records",
            time_batch_records(records, settings.forwarder_max_poll_records),
        )
    best["forwarder total (take + deliver)"] = (
        best["take (check + intake + offsets)"] + best["deliver (splice, post, settle)"]
    )
    best["with its fetch (total + batch records)"] = (
        best["forwarder total (take + deliver)"] + best["aiokafka fetch, batch records"]
    )
    return best


def print_stages(best: dict[str, float]) -> None:
    """One line per stage."""
    for name, value in best.items():
        print(f"  {name:40s} {value:6.2f} us/record")


def main() -> None:
    """Time every stage ``--rounds`` times; print the best of each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print_stages(measure(args.records, args.rounds))


if __name__ == "__main__":
    main()
