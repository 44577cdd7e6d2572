"""Per-stage cost of the ingest domain, in microseconds per event (``docs/api.md``, "The hot path").

Calls :class:`~tracking_common.ingest.Ingestor` for a 100-event ``/v1`` batch of page views
(as ``bench_api.py`` posts them), the same with a ``web_page`` entity (so Iglu validation
runs), and a tp2 ``payload_data`` batch of page views with that entity; each stage is timed
with ``perf_counter_ns`` around it, then the whole call. No Kafka, no HTTP.

    .venv/bin/python -m bench.bench_ingest [rounds]
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, bundled_repository
from tracking_common.iglu.resolver_config import build_resolver
from tracking_common.ingest import Ingestor
from tracking_common.ingest.decoding import decode_event, v1_events
from tracking_common.ingest.schema_checks import resolve_schemas
from tracking_common.ingest.tracker import (
    decode_payload,
    payload_data_items,
    read_event,
    record_payload,
)
from tracking_common.messages import Message
from tracking_common.protocol import CONTEXTS_URI, RequestFacts, to_payload
from tracking_common.record import encode_record, partition_key, record_headers

from bench.payloads import page_view

EVENTS = 100
DEPTH = 32
WEB_PAGE = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
FACTS = RequestFacts(ip="203.0.113.9", useragent="bench")
TRACE = [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]


def v1_body(*, entity: bool) -> bytes:
    """A ``{"events": [...]}`` body of page views, each with a ``web_page`` entity if asked."""
    events = []
    for n in range(EVENTS):
        event = page_view(n, event_id=str(uuid.uuid4()))
        if entity:
            event["entities"] = [{"schema": WEB_PAGE, "data": {"id": str(uuid.uuid4())}}]
        events.append(event)
    return orjson.dumps({"events": events})


def tp2_body() -> bytes:
    """A ``payload_data`` body of tracker page views with a ``web_page`` entity."""
    items = []
    for n in range(EVENTS):
        entity = {"schema": WEB_PAGE, "data": {"id": str(uuid.uuid4())}}
        contexts = {"schema": CONTEXTS_URI, "data": [entity]}
        items.append(
            {
                "e": "pv",
                "eid": str(uuid.uuid4()),
                "p": "web",
                "tv": "js-3.0.0",
                "aid": "bench",
                "url": f"https://shop.example.com/products/{n}",
                "page": "Product",
                "refr": "https://search.example/",
                "uid": f"user-{n}",
                "lang": "en-GB",
                "dtm": "1700000000000",
                "stm": "1700000000100",
                "co": orjson.dumps(contexts).decode(),
            }
        )
    return orjson.dumps({"schema": PAYLOAD_DATA, "data": items})


def _message(payload: dict[str, str], sent: int | None) -> Message:
    """The record, key, headers and Message of one event, as ``Ingestor`` builds them."""
    value = encode_record(payload, collector_tstamp=1, source="v1", device_sent_tstamp=sent)
    event_id = payload["eid"].encode()
    key = partition_key(payload)
    return Message("events", value, key, record_headers(event_id, TRACE), key != event_id)


class Stages:
    """Nanoseconds spent per stage, summed over rounds."""

    def __init__(self) -> None:
        self.spent: dict[str, int] = {}

    def time(self, stage: str, work: Callable[[], Any]) -> Any:
        """Run ``work``, adding its time to ``stage``."""
        started = time.perf_counter_ns()
        result = work()
        self.spent[stage] = self.spent.get(stage, 0) + time.perf_counter_ns() - started
        return result

    def report(self, title: str, rounds: int) -> None:
        """Print microseconds per event for each stage."""
        print(f"## {title}")
        for stage, spent in self.spent.items():
            print(f"  {stage:34s} {spent / rounds / EVENTS / 1000:7.2f} us/event")


async def v1_stages(ingestor: Ingestor, body: bytes, rounds: int) -> Stages:
    """Each stage of ``Ingestor.v1``, then the whole call."""
    resolver = build_resolver(None)
    stages = Stages()
    for _ in range(rounds):
        raws, level, _ = stages.time("envelope", lambda: v1_events(body, DEPTH))
        decoded = stages.time(
            "decode + model checks",
            lambda: [decode_event(raw, level=level, max_depth=DEPTH) for raw in raws],  # noqa: B023
        )
        events = [item.event for item in decoded]
        started = time.perf_counter_ns()
        schemas = await resolve_schemas(resolver, events, allow_unknown=False)
        stages.spent["schema resolution"] = (
            stages.spent.get("schema resolution", 0) + time.perf_counter_ns() - started
        )
        stages.time("iglu validation", lambda: [schemas.issues(e) for e in events])  # noqa: B023
        payloads = stages.time("payload building", lambda: [to_payload(e) for e in events])  # noqa: B023
        stages.time("record encoding", lambda: [_message(p, None) for p in payloads])  # noqa: B023
        started = time.perf_counter_ns()
        batch = await ingestor.v1(body, now_ms=1, trace=TRACE, request_id="bench")
        stages.spent["whole Ingestor.v1"] = (
            stages.spent.get("whole Ingestor.v1", 0) + time.perf_counter_ns() - started
        )
        if batch.rejections:
            raise SystemExit(f"rejected: {batch.rejections[0].as_dict()}")
    await resolver.close()
    return stages


async def tp2_stages(ingestor: Ingestor, body: bytes, rounds: int) -> Stages:
    """Each stage of ``Ingestor.tracker``, then the whole call."""
    resolver = build_resolver(None)
    envelopes = bundled_repository()
    stages = Stages()
    for _ in range(rounds):
        raws = stages.time("envelope", lambda: payload_data_items(body, DEPTH))
        items = stages.time(
            "decode payload_data items",
            lambda: [
                decode_payload(raw, envelopes=envelopes, level=3, max_depth=DEPTH)
                for raw in raws  # noqa: B023
            ],
        )
        read = stages.time(
            "read event + model checks",
            lambda: [read_event(item.payload) for item in items],  # noqa: B023
        )
        events = [event for event, _ in read]
        started = time.perf_counter_ns()
        schemas = await resolve_schemas(resolver, events, allow_unknown=False)
        stages.spent["schema resolution"] = (
            stages.spent.get("schema resolution", 0) + time.perf_counter_ns() - started
        )
        stages.time("iglu validation", lambda: [schemas.issues(e) for e in events])  # noqa: B023
        records = stages.time(
            "payload building",
            lambda: [
                record_payload(item.payload, event, FACTS)
                for item, event in zip(items, events, strict=True)  # noqa: B023
            ],
        )
        stages.time("record encoding", lambda: [_message(p, s) for p, s in records])  # noqa: B023
        started = time.perf_counter_ns()
        batch = await ingestor.tracker(
            body, source="tp2", now_ms=1, trace=TRACE, request_id="bench", facts=FACTS
        )
        stages.spent["whole Ingestor.tracker"] = (
            stages.spent.get("whole Ingestor.tracker", 0) + time.perf_counter_ns() - started
        )
        if batch.rejections:
            raise SystemExit(f"rejected: {batch.rejections[0].as_dict()}")
    await resolver.close()
    return stages


async def main(rounds: int) -> None:
    """Print the stages of each batch."""
    envelopes = bundled_repository()
    envelopes.has(PAYLOAD_DATA_SCHEMA)
    ingestor = Ingestor(
        iglu=envelopes,
        resolver=build_resolver(None),
        events_topic="events",
        bad_events_topic="events_bad",
        allow_unknown_schemas=False,
        max_event_bytes=65_536,
        max_events_per_request=500,
        max_json_depth=DEPTH,
    )
    try:
        (await v1_stages(ingestor, v1_body(entity=False), rounds)).report(
            "v1: 100 page views", rounds
        )
        (await v1_stages(ingestor, v1_body(entity=True), rounds)).report(
            "v1: 100 page views with a web_page entity", rounds
        )
        (await tp2_stages(ingestor, tp2_body(), rounds)).report(
            "tp2: 100 page views with a web_page entity", rounds
        )
    finally:
        await ingestor.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
