"""Helpers of the API's unit tests: the app over an in-memory publisher, reached through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from api_service.app import build_pipeline, create_app
from api_service.metrics import ApiMetrics
from api_service.pipeline import RequestPipeline
from api_service.settings import ApiSettings
from tracking_common.messages import Message
from tracking_producer import PublishError

KEY = "unit-test-key-0123456789"
OTHER_KEY = "unit-test-key-abcdefghij"
AUTH = {"x-api-key": KEY}
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"


class FakePublisher:
    """The :class:`~tracking_producer.Publisher` port, in memory.

    ``fail_with`` makes every publish raise that PublishError kind, as a Kafka outage would.
    """

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.calls = 0
        self.fail_with: str | None = None
        self.connected = True
        self.buffered_bytes = 0

    @property
    def ready(self) -> bool:
        """Connected (settable by the test)."""
        return self.connected

    async def publish(self, messages: Sequence[Message]) -> None:
        """Keep ``messages``, or fail as told."""
        self.calls += 1
        if self.fail_with is not None:
            raise PublishError(self.fail_with, "publishing failed on purpose")
        self.messages.extend(messages)

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self, timeout_s: float) -> None:
        """Nothing to flush."""

    def on(self, topic: str) -> list[Message]:
        """The messages published to ``topic``."""
        return [message for message in self.messages if message.topic == topic]

    def values(self, topic: str) -> list[dict[str, Any]]:
        """The decoded values published to ``topic``."""
        return [orjson.loads(message.value) for message in self.on(topic)]


def make_settings(**overrides: Any) -> ApiSettings:
    """Settings as the environment would give them, with test keys."""
    values: dict[str, Any] = {"api_keys": f"{KEY},{OTHER_KEY}", "api_rate_limit_per_s": 0}
    values.update(overrides)
    return ApiSettings(**values)


class Api:
    """The app under test, its publisher and an httpx client bound to it."""

    def __init__(
        self, settings: ApiSettings, publisher: FakePublisher, metrics: ApiMetrics | None = None
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.pipeline: RequestPipeline = build_pipeline(settings, publisher, metrics)
        self.app = create_app(settings, self.pipeline)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://api.test"
        )

    async def aclose(self) -> None:
        """Close the client and the ingestor's registry connections."""
        await self.client.aclose()
        await self.pipeline.ingestor.close()

    async def v1(self, body: Any, **kwargs: Any) -> httpx.Response:
        """POST ``body`` as JSON to /v1/events with the test key."""
        headers = {**AUTH, **kwargs.pop("headers", {})}
        return await self.client.post("/v1/events", json=body, headers=headers, **kwargs)

    async def tp2(self, items: list[dict[str, str]], **kwargs: Any) -> httpx.Response:
        """POST a payload_data body to the tracker endpoint."""
        body = {"schema": PAYLOAD_DATA, "data": items}
        return await self.client.post("/com.snowplowanalytics.snowplow/tp2", json=body, **kwargs)


MakeApi = Callable[..., Api]


@asynccontextmanager
async def building_apis(**defaults: Any) -> AsyncIterator[MakeApi]:
    """A factory of :class:`Api` with settings ``defaults`` (overridable per call); every API
    built is closed when the block ends."""
    built: list[Api] = []

    def make(**overrides: Any) -> Api:
        api = Api(make_settings(**{**defaults, **overrides}), FakePublisher())
        built.append(api)
        return api

    try:
        yield make
    finally:
        for api in built:
            await api.aclose()


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[MakeApi]:
    """Build an :class:`Api` with settings overrides; clients are closed at teardown.

    ``IGLU_SCHEMA_DIR`` holds ``com.acme/button_click`` unless overridden.
    """
    async with building_apis(iglu_schema_dir=write_iglu_dir(tmp_path / "iglu")) as make:
        yield make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    """The app with default settings (rate limit off)."""
    return make_api()


def page_view(**fields: Any) -> dict[str, Any]:
    """A valid /v1 page view."""
    event: dict[str, Any] = {"event_type": "page_view", "page": {"url": "https://shop.example/"}}
    event.update(fields)
    return event


def tracker_page_view(**fields: str) -> dict[str, str]:
    """A valid tracker-protocol page view payload."""
    payload = {"e": "pv", "p": "web", "tv": "js-3.0.0", "url": "https://shop.example/"}
    payload.update(fields)
    return payload


BUTTON_CLICK = "iglu:com.acme/button_click/jsonschema/1-0-0"
BUTTON_CLICK_SCHEMA: dict[str, Any] = {
    "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
    "self": {
        "vendor": "com.acme",
        "name": "button_click",
        "format": "jsonschema",
        "version": "1-0-0",
    },
    "type": "object",
    "properties": {"button_id": {"type": "string", "maxLength": 8}},
    "required": ["button_id"],
    "additionalProperties": False,
}


def write_iglu_dir(root: Path) -> Path:
    """An Iglu directory holding ``com.acme/button_click`` 1-0-0; returns ``root``."""
    path = root / "com.acme" / "button_click" / "jsonschema"
    path.mkdir(parents=True)
    (path / "1-0-0").write_bytes(orjson.dumps(BUTTON_CLICK_SCHEMA))
    return root


def button_click(button_id: object = "signup", **fields: Any) -> dict[str, Any]:
    """A /v1 self-describing event of ``com.acme/button_click``."""
    event: dict[str, Any] = {
        "event_type": "self_describing",
        "event": {"schema": BUTTON_CLICK, "data": {"button_id": button_id}},
    }
    event.update(fields)
    return event
