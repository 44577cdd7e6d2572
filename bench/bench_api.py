"""API throughput and latency against its two ceilings: its own no-op route and raw aiokafka.

One run starts ``api-service`` as a subprocess (fresh 3-partition topics, the rate limit off,
``API_BENCH_NOOP_ENDPOINT=true``) and drives it with wrk (C, one thread: the server needs the
other core) through ``bench/api_wrk.lua``:

- ``noop_single_rps``: ``POST /bench/noop`` with one page view (auth, read, parse: the HTTP
  ceiling);
- ``api_single_rps`` and its p50/p99 latency: ``POST /v1/events`` with one page view;
- ``api_batch_events_per_s``: ``POST /v1/events`` with ``{"events": [100 page views]}``.

Then ``raw_producer_events_per_s``: a raw aiokafka producer, in its own process, with the
API's settings (acks=all, idempotent, lz4, the same linger) producing the very records the API
builds for that batch, as fast as it can: the Kafka ceiling. Afterwards the events topic must
hold at least as many records as the API acknowledged.

    uv run python -m bench.bench_api [--duration 10] [--connections 48]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scripts.kafka.security import client_options_from_env

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "api_wrk.lua"
API_KEY = "bench-key-0123456789abcdef"
BATCH_SIZE = 100
PARTITIONS = 3
LINGER_MS = 5  # the API's default (API_PRODUCER_LINGER_MS)


# -- the payloads -----------------------------------------------------------------------------


def page_view(n: int, *, event_id: str | None = None) -> dict[str, Any]:
    """One page view, as a tracker would post it to ``/v1/events``."""
    event: dict[str, Any] = {
        "event_type": "page_view",
        "app_id": "bench",
        "platform": "web",
        "page": {
            "url": f"https://shop.example.com/products/{n % 997}?ref=bench",
            "title": "Product",
            "referrer": "https://search.example/?q=shoes",
        },
        "subject": {"user_id": f"user-{n % 5000}", "language": "en-GB"},
    }
    if event_id is not None:
        event["event_id"] = event_id
    return event


def batch_events() -> list[dict[str, Any]]:
    """``BATCH_SIZE`` page views with distinct ids (the API refuses duplicates in a request)."""
    return [page_view(n, event_id=str(uuid.uuid4())) for n in range(BATCH_SIZE)]


# -- wrk ----------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The wrk binary; installed from the distribution's packages when missing and we may."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        print("  wrk is missing: installing it with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=False, env=env)  # noqa: S603
        subprocess.run([apt, "install", "-y", "-qq", "wrk"], check=False, env=env)  # noqa: S603
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "bench_api needs the wrk load generator (https://github.com/wg/wrk): install it, "
        "e.g. 'apt-get install wrk' or 'brew install wrk', and run again"
    )


def run_wrk(
    wrk: str, url: str, body: Path, *, connections: int, duration_s: float
) -> dict[str, float]:
    """One wrk run; its summary (requests, errors, latency percentiles in microseconds)."""
    env = {**os.environ, "BENCH_BODY_FILE": str(body), "BENCH_API_KEY": API_KEY}
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    output = subprocess.run(  # noqa: S603 - wrk with our own arguments
        command, check=True, capture_output=True, env=env, timeout=duration_s + 60
    ).stdout.decode()
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            summary: dict[str, float] = json.loads(line.removeprefix("BENCH_JSON "))
            return summary
    raise RuntimeError(f"wrk printed no summary:\n{output}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    wrk: str,
    url: str,
    body: Path,
    *,
    connections: int,
    duration_s: float,
    label: str,
    server_pid: int,
) -> dict[str, float]:
    """A short warm-up, then the measured run; the summary plus ``rps``, ``ok`` answers and
    ``cpu_us`` (the server's CPU time per answer: steadier than rates on a busy host)."""
    run_wrk(wrk, url, body, connections=connections, duration_s=2)
    cpu_before = cpu_seconds(server_pid)
    summary = run_wrk(wrk, url, body, connections=connections, duration_s=duration_s)
    cpu_used = cpu_seconds(server_pid) - cpu_before
    errors = {
        name: int(summary[name])
        for name in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")
        if summary[name]
    }
    summary["ok"] = summary["requests"] - summary["status_errors"]
    summary["rps"] = summary["ok"] / (summary["duration_us"] / 1e6)
    summary["cpu_us"] = cpu_used * 1e6 / max(summary["requests"], 1)
    print(
        f"  {label}: {summary['rps']:,.0f} ok answers/s, p50 {summary['p50_us'] / 1000:.2f} ms, "
        f"p99 {summary['p99_us'] / 1000:.2f} ms, server CPU {summary['cpu_us']:.0f} us/request"
        + (f", errors {errors}" if errors else ""),
        flush=True,
    )
    if summary["ok"] <= 0:
        raise SystemExit(f"{label}: no request succeeded ({errors})")
    return summary


# -- Kafka --------------------------------------------------------------------------------------


@contextmanager
def kafka() -> Iterator[str]:
    """A broker's bootstrap address: ``KAFKA_BOOTSTRAP_SERVERS`` if it answers, else our own."""
    from scripts.kafka.broker import DEFAULT_BOOTSTRAP, KafkaBroker, answers, free_port  # noqa: PLC0415

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP)
    if answers(bootstrap, options=client_options_from_env()):
        yield bootstrap
        return
    print(f"  no broker at {bootstrap}: starting one for this run ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as workdir:
        broker = KafkaBroker(Path(workdir), f"127.0.0.1:{free_port()}")
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.stop()


async def create_topics(bootstrap: str, names: list[str]) -> None:
    """Create the topics (``PARTITIONS`` each) and wait until every partition has a leader."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: PLC0415

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options_from_env())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **client_options_from_env())
    await producer.start()
    try:
        async with asyncio.timeout(30):
            for name in names:
                while True:
                    if len(await producer.partitions_for(name) or ()) == PARTITIONS:
                        break
                    await asyncio.sleep(0.05)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (the sum of its partitions' end offsets)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options_from_env()
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        offsets = await consumer.end_offsets(partitions)
        return sum(offsets.values())
    finally:
        await consumer.stop()


def producer_settings() -> dict[str, Any]:
    """The API publisher's producer settings (``api_service.publisher``)."""
    return {
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": "lz4",
        "linger_ms": LINGER_MS,
        "max_batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
    }


async def raw_producer(
    bootstrap: str, topic: str, duration_s: float, window: int
) -> tuple[int, float]:
    """Produce the API's records for the batch payload as fast as aiokafka can.

    Returns the acknowledged count and the seconds taken (connecting excluded).

    Up to ``window`` batches of ``BATCH_SIZE`` are in flight at once, as with that many
    connections posting batches to the API.
    """
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415
    from aiokafka.partitioner import DefaultPartitioner  # noqa: PLC0415
    from tracking_common.iglu import bundled_repository  # noqa: PLC0415
    from tracking_common.iglu.resolver_config import build_resolver  # noqa: PLC0415
    from tracking_common.ingest import Ingestor  # noqa: PLC0415
    from tracking_common.record import now_ms  # noqa: PLC0415

    ingestor = Ingestor(
        iglu=bundled_repository(),
        resolver=build_resolver(None),
        events_topic=topic,
        bad_events_topic=topic + "_bad",
        allow_unknown_schemas=False,
        max_event_bytes=65_536,
        max_events_per_request=BATCH_SIZE,
        max_json_depth=32,
    )
    trace = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    body = json.dumps({"events": batch_events()}).encode()
    batch = await ingestor.v1(body, now_ms=now_ms(), trace=trace, request_id="bench")
    messages = batch.messages
    if batch.rejections:
        raise SystemExit(f"the batch payload is invalid: {batch.rejections[0].as_dict()}")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **producer_settings(), **client_options_from_env()
    )
    await producer.start()
    # The partitions the default partitioner picks, chosen once (as the API does per request).
    partitions = sorted(await producer.partitions_for(topic))
    partitioner = DefaultPartitioner()
    chosen = [partitioner(m.key, partitions, partitions) for m in messages]
    acknowledged = 0
    in_flight: deque[asyncio.Future[Any]] = deque()
    try:
        started = time.perf_counter()
        deadline = started + duration_s
        while time.perf_counter() < deadline:
            futures = [
                await producer.send(topic, m.value, key=m.key, partition=p, headers=m.headers)
                for m, p in zip(messages, chosen, strict=True)
            ]
            in_flight.append(asyncio.gather(*futures))
            if len(in_flight) >= window:
                await in_flight.popleft()
                acknowledged += len(messages)
        while in_flight:
            await in_flight.popleft()
            acknowledged += len(messages)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return acknowledged, elapsed


def raw_producer_child(bootstrap: str, topic: str, duration_s: float, window: int) -> None:
    """In a process of its own: print the raw producer's events and elapsed seconds as JSON."""
    import tracking_common.ingest  # noqa: F401, PLC0415 - imported before the clock starts
    import uvloop  # noqa: PLC0415 - the API serves on uvloop too

    events, elapsed = uvloop.run(raw_producer(bootstrap, topic, duration_s, window))
    print(json.dumps({"events": events, "elapsed_s": elapsed}))


# -- the API ----------------------------------------------------------------------------------


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@contextmanager
def api_service(bootstrap: str, topics: dict[str, str]) -> Iterator[tuple[str, int]]:
    """A running ``api-service`` subprocess, ready; its base URL and process id."""
    from scripts.kafka.broker import free_port  # noqa: PLC0415

    port, admin_port = free_port(), free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EVENTS_TOPIC": topics["events"],
        "BAD_EVENTS_TOPIC": topics["bad"],
        "DLQ_TOPIC": topics["dlq"],
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_ADMIN_HOST": "127.0.0.1",
        "API_ADMIN_PORT": str(admin_port),
        "API_KEYS": API_KEY,
        "API_RATE_LIMIT_PER_S": "0",
        "API_BENCH_NOOP_ENDPOINT": "true",
        "API_DRAIN_GRACE_S": "0",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "api_service.main"], env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(base_url + "/readyz") == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                raise SystemExit(f"api-service exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit("api-service was not ready within 60 s")
            time.sleep(0.1)
        yield base_url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the run ------------------------------------------------------------------------------------


def main() -> None:
    """Measure the API and both ceilings; record and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=48)
    parser.add_argument("--raw-producer-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_producer_child:
        raw_producer_child(args.bootstrap, args.topic, args.duration, args.connections)
        return

    from bench.results import ratio_line, record  # noqa: PLC0415

    wrk = ensure_wrk()
    run = uuid.uuid4().hex[:8]
    topics = {kind: f"bench_api_{kind}_{run}" for kind in ("events", "bad", "dlq", "raw")}
    single = {"ok": 0.0}
    with kafka() as bootstrap, tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        asyncio.run(create_topics(bootstrap, list(topics.values())))
        single_body = Path(tmp) / "single.json"
        single_body.write_text(json.dumps(page_view(1)))
        batch_body = Path(tmp) / "batch.json"
        batch_body.write_text(json.dumps({"events": batch_events()}))
        with api_service(bootstrap, topics) as (base_url, pid):
            options = {"connections": args.connections, "duration_s": args.duration}
            options["server_pid"] = pid
            noop = measure(wrk, base_url + "/bench/noop", single_body, label="noop", **options)
            url = base_url + "/v1/events"
            single = measure(wrk, url, single_body, label="single", **options)
            batch = measure(wrk, url, batch_body, label=f"batch of {BATCH_SIZE}", **options)
        stored = asyncio.run(end_offsets(bootstrap, topics["events"]))
        acknowledged = int(single["ok"] + batch["ok"] * BATCH_SIZE)
        print(f"  events topic holds {stored:,} records; {acknowledged:,} acknowledged (measured)")
        if stored < acknowledged:
            raise SystemExit("the events topic holds fewer records than the API acknowledged")
        output = subprocess.run(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "bench.bench_api",
                "--raw-producer-child",
                "--bootstrap",
                bootstrap,
                "--topic",
                topics["raw"],
                "--duration",
                str(args.duration),
                "--connections",
                str(args.connections),
            ],
            check=True,
            capture_output=True,
            timeout=args.duration + 120,
        )
        raw = json.loads(output.stdout.decode().strip().splitlines()[-1])
        raw_stored = asyncio.run(end_offsets(bootstrap, topics["raw"]))
        if raw_stored < raw["events"]:
            raise SystemExit(f"raw producer: {raw['events']} acknowledged, {raw_stored} stored")
    raw_rate = raw["events"] / raw["elapsed_s"]
    print(
        f"  raw producer: {raw_rate:,.0f} events/s ({raw['events']:,} in {raw['elapsed_s']:.1f} s)"
    )
    figures = {
        "noop_single_rps": noop["rps"],
        "api_single_rps": single["rps"],
        "api_single_p50_ms": single["p50_us"] / 1000,
        "api_single_p99_ms": single["p99_us"] / 1000,
        "api_batch_events_per_s": batch["rps"] * BATCH_SIZE,
        "api_batch_p50_ms": batch["p50_us"] / 1000,
        "api_batch_p99_ms": batch["p99_us"] / 1000,
        "raw_producer_events_per_s": raw_rate,
        "noop_cpu_us_per_request": noop["cpu_us"],
        "api_single_cpu_us_per_request": single["cpu_us"],
        "api_batch_cpu_us_per_event": batch["cpu_us"] / BATCH_SIZE,
    }
    record(figures)
    print(ratio_line("API single vs no-op (requests/s)", single["rps"], noop["rps"], 0.7))
    print(
        ratio_line(
            "no-op vs single, server CPU per request",
            noop["cpu_us"],
            single["cpu_us"],
            None,
        )
    )
    print(
        ratio_line(
            "API batch vs raw producer (events/s)",
            figures["api_batch_events_per_s"],
            raw_rate,
            0.5,
        )
    )


if __name__ == "__main__":
    main()
