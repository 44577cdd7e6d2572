"""Helpers of the ingest domain's tests: an Ingestor over the bundled schemas and a test
Iglu directory (``button_click``), and its outcomes decoded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from tracking_common.iglu import (
    PAYLOAD_DATA_SCHEMA,
    RegistryUnavailableError,
    SchemaKey,
    bundled_repository,
)
from tracking_common.iglu.resolver import IgluResolver, Resolution
from tracking_common.iglu.resolver_config import build_resolver
from tracking_common.ingest import Batch, Ingestor
from tracking_common.protocol import RequestFacts

from tests.unit.api_service.api_support import write_iglu_dir

PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
FACTS = RequestFacts(ip="198.51.100.7", useragent="test-agent")


class DownResolver(IgluResolver):
    """A resolver whose registries never answer (as in an outage)."""

    async def resolve(self, keys: Iterable[SchemaKey]) -> Resolution:
        """Fail as a registry outage does."""
        raise RegistryUnavailableError(list(keys), ["central"], "central timed out")


MakeIngestor = Callable[..., Ingestor]


@asynccontextmanager
async def building_ingestors(schema_dir: Path) -> AsyncIterator[MakeIngestor]:
    """A factory of Ingestors (settings overridable per call), each closed at the end."""
    built: list[Ingestor] = []
    envelopes = bundled_repository()
    envelopes.has(PAYLOAD_DATA_SCHEMA)

    def make(resolver: IgluResolver | None = None, **overrides: Any) -> Ingestor:
        settings: dict[str, Any] = {
            "events_topic": "events",
            "bad_events_topic": "events_bad",
            "allow_unknown_schemas": False,
            "max_event_bytes": 65_536,
            "max_events_per_request": 500,
            "max_json_depth": 32,
        }
        settings.update(overrides)
        ingestor = Ingestor(
            iglu=envelopes,
            resolver=resolver or build_resolver(None, schema_dir=write_iglu_dir(schema_dir)),
            **settings,
        )
        built.append(ingestor)
        return ingestor

    try:
        yield make
    finally:
        for ingestor in built:
            await ingestor.close()


async def v1(ingestor: Ingestor, body: Any) -> Batch:
    """``ingestor.v1`` for a JSON-ready ``body`` (bytes are sent as they are)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await ingestor.v1(raw, now_ms=1_700_000_000_000, trace=[], request_id="req-1")


async def tp2(ingestor: Ingestor, items: list[Any], facts: RequestFacts = FACTS) -> Batch:
    """``ingestor.tracker`` for a payload_data body of ``items``."""
    body = orjson.dumps({"schema": PAYLOAD_DATA, "data": items})
    return await ingestor.tracker(
        body, source="tp2", now_ms=1_700_000_000_000, trace=[], request_id="req-1", facts=facts
    )


def records(batch: Batch) -> list[dict[str, Any]]:
    """The event records' ``data``, in order."""
    return [
        orjson.loads(message.value)["data"]
        for message in batch.messages
        if message.topic == "events"
    ]


def bad_events(batch: Batch) -> list[dict[str, Any]]:
    """The bad events' ``data``, in order."""
    return [
        orjson.loads(message.value)["data"]
        for message in batch.messages
        if message.topic == "events_bad"
    ]


def codes(batch: Batch, index: int = 0) -> list[tuple[str, str]]:
    """(path, code) of each issue of the ``index``-th rejection."""
    return [(issue.path, issue.code) for issue in batch.rejections[index].issues]
