"""EventProducer and tracking-produce on the real broker: contract records of source internal,
the documented key and headers, the trace context; Kafka down is a timeout within the deadline
(library) and lines reported as not produced with exit code 1 (command line)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from tracking_common.record import decode_record, partition_key
from tracking_producer import EventProducer, InvalidEventError, ProduceTimeoutError

from tests.support.kafka import PrivateBroker, consume_all, create_topic, unique_name

pytestmark = pytest.mark.kafka

BIN = Path(sys.executable).parent


def page_view(n: int, **extra: object) -> dict[str, object]:
    """A /v1 page view of user ``u-<n>``."""
    return {
        "event_type": "page_view",
        "app_id": "it",
        "page": {"url": f"https://shop.example/p/{n}"},
        "subject": {"user_id": f"u-{n}"},
        **extra,
    }


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    """A fresh topic of 2 partitions."""
    return await create_topic(kafka_bootstrap, unique_name("producer-lib"), 2)


async def test_events_become_contract_records_of_source_internal_with_key_and_trace(
    kafka_bootstrap: str, topic: str
) -> None:
    tracer = TracerProvider().get_tracer("it")
    async with EventProducer(bootstrap_servers=kafka_bootstrap, topic=topic) as producer:
        with tracer.start_as_current_span("caller") as span:
            ids = await producer.send_many([page_view(n) for n in range(5)])
        with pytest.raises(InvalidEventError):
            await producer.send_many([page_view(9), {"event_type": "page_view"}])

    records = await consume_all(kafka_bootstrap, topic, 5)
    assert len(records) == 5  # nothing of the refused call
    trace_id = format(span.get_span_context().trace_id, "032x")
    by_id = {decode_record(r.value).event_id: r for r in records}
    assert sorted(by_id) == sorted(ids)
    for record in records:
        decoded = decode_record(record.value)
        headers = dict(record.headers)
        assert decoded.source == "internal"
        assert record.key == partition_key(decoded.payload)
        assert headers["event-id"] == decoded.event_id.encode()
        assert headers["record-schema"].startswith(b"iglu:io.trackingpipeline/event_record/")
        assert trace_id in headers["traceparent"].decode()


async def test_kafka_down_times_out_within_the_deadline(private_broker: PrivateBroker) -> None:
    topic = await create_topic(private_broker.bootstrap, unique_name("producer-down"), 1)
    deadline_s = 2.0
    async with EventProducer(
        bootstrap_servers=private_broker.bootstrap, topic=topic, produce_timeout_s=deadline_s
    ) as producer:
        await producer.send(page_view(1))
        await asyncio.to_thread(private_broker.stop)
        started = time.monotonic()
        with pytest.raises(ProduceTimeoutError) as raised:
            await producer.send(page_view(2, event_id=str(uuid.uuid4())))
        took = time.monotonic() - started
    assert took < deadline_s + 1.0
    assert len(raised.value.event_ids) == 1


def tracking_produce(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script, as a user runs it."""
    return subprocess.run(  # noqa: S603 - our own console script
        [str(BIN / "tracking-produce"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_command_line_produces_good_lines_and_reports_bad_ones(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    lines = [orjson.dumps(page_view(1)), b"{oops", orjson.dumps({"event_type": "struct"})]
    lines += [orjson.dumps(page_view(n)) for n in range(2, 5)]
    source = tmp_path / "backfill.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    rejects = tmp_path / "rejects.jsonl"

    done = await asyncio.to_thread(
        tracking_produce,
        str(source),
        "--bootstrap-servers",
        kafka_bootstrap,
        "--topic",
        topic,
        "--rejects",
        str(rejects),
        "--batch-size",
        "2",
    )

    assert done.returncode == 1, done.stderr
    assert "6 lines: 4 produced, 2 rejected, 0 failed" in done.stderr
    assert f"{source}:2: / invalid_json" in done.stderr
    assert f"{source}:3: /category missing" in done.stderr
    assert [orjson.loads(line)["line"] for line in rejects.read_bytes().splitlines()] == [2, 3]
    records = await consume_all(kafka_bootstrap, topic, 4)
    assert sorted(decode_record(r.value).payload["url"] for r in records) == [
        f"https://shop.example/p/{n}" for n in range(1, 5)
    ]


async def test_the_command_line_with_kafka_down_reports_the_lines_not_produced(
    tmp_path: Path,
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(orjson.dumps(page_view(1)) + b"\n" + orjson.dumps(page_view(2)) + b"\n")
    nobody = "127.0.0.1:9"  # discard: no Kafka there

    done = await asyncio.to_thread(
        tracking_produce, str(source), "--bootstrap-servers", nobody, "--timeout", "1"
    )

    assert done.returncode == 1
    assert "2 lines: 0 produced, 0 rejected, 2 failed" in done.stderr
    assert f"{source}:1: Kafka did not acknowledge within 1 s" in done.stderr
    assert f"{source}:2:" in done.stderr
