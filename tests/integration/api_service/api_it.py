"""Helpers of the API's integration tests: the app in-process over the real Kafka publisher,
and the ``api-service`` process itself."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka.structs import ConsumerRecord
from api_service.app import build_pipeline, create_app
from api_service.pipeline import RequestPipeline
from api_service.settings import ApiSettings
from tracking_producer import KafkaPublisher

from tests.support.kafka import consume_all, create_topic, unique_name
from tests.support.services import ServiceProcess, free_port
from tests.support.waiting import wait_until

__all__ = ["wait_until"]  # the API tests import it from here too

KEY = "integration-key-0123456789"
AUTH = {"x-api-key": KEY}
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
TP2 = "/com.snowplowanalytics.snowplow/tp2"

Records = list[ConsumerRecord[bytes, bytes]]


class Topics:
    """A fresh events topic (``partitions`` partitions) and bad-events topic."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.events = unique_name("api-events")
        self.bad = unique_name("api-bad")

    async def create(self, partitions: int = 2) -> Topics:
        """Create both topics on the broker."""
        await create_topic(self.bootstrap, self.events, partitions)
        await create_topic(self.bootstrap, self.bad, 1)
        return self

    async def events_records(self, expected: int, timeout_s: float = 20.0) -> Records:
        """Every record of the events topic, once ``expected`` arrived."""
        return await consume_all(self.bootstrap, self.events, expected, timeout_s)

    async def bad_records(self, expected: int, timeout_s: float = 20.0) -> Records:
        """Every record of the bad-events topic, once ``expected`` arrived."""
        return await consume_all(self.bootstrap, self.bad, expected, timeout_s)


class LiveApi:
    """The app in this process, publishing to the real broker through :class:`KafkaPublisher`."""

    def __init__(self, topics: Topics, **overrides: Any) -> None:
        values: dict[str, Any] = {
            "api_keys": KEY,
            "kafka_bootstrap_servers": topics.bootstrap,
            "events_topic": topics.events,
            "bad_events_topic": topics.bad,
            "api_rate_limit_per_s": 0,
        }
        values.update(overrides)
        self.settings = ApiSettings(**values)
        self.publisher = KafkaPublisher(
            self.settings.kafka_bootstrap_servers,
            timeout_s=self.settings.api_produce_timeout_s,
            buffer_bytes=self.settings.api_producer_buffer_bytes,
            linger_ms=self.settings.api_producer_linger_ms,
            probe_interval_s=0.5,
        )
        self.pipeline: RequestPipeline = build_pipeline(self.settings, self.publisher)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(self.settings, self.pipeline)),
            base_url="http://api.test",
        )

    async def start(self, timeout_s: float = 30.0) -> LiveApi:
        """Start the publisher and wait until it is ready."""
        await self.publisher.start()
        await wait_until(lambda: self.publisher.ready, timeout_s, "the publisher never got ready")
        return self

    async def close(self) -> None:
        """Flush and close the publisher and the client."""
        await self.client.aclose()
        await self.publisher.stop(timeout_s=5.0)

    async def v1(self, body: Any) -> httpx.Response:
        """POST ``body`` to /v1/events with the key."""
        return await self.client.post("/v1/events", json=body, headers=AUTH)


def page_view(**fields: Any) -> dict[str, Any]:
    """A valid /v1 page view with a fresh event id."""
    event: dict[str, Any] = {
        "event_type": "page_view",
        "event_id": str(uuid.uuid4()),
        "page": {"url": "https://shop.example/"},
    }
    event.update(fields)
    return event


def api_process(topics: Topics, tmp_path: Path, **env: str) -> tuple[ServiceProcess, str, str]:
    """The ``api-service`` console script for ``topics``: (process, public URL, admin URL)."""
    port, admin_port = free_port(), free_port()
    environment = {
        "KAFKA_BOOTSTRAP_SERVERS": topics.bootstrap,
        "EVENTS_TOPIC": topics.events,
        "BAD_EVENTS_TOPIC": topics.bad,
        "API_KEYS": KEY,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_ADMIN_HOST": "127.0.0.1",
        "API_ADMIN_PORT": str(admin_port),
        "API_DRAIN_GRACE_S": "0.2",
        "API_SHUTDOWN_TIMEOUT_S": "10",
        **env,
    }
    admin = f"http://127.0.0.1:{admin_port}"
    process = ServiceProcess(
        "api-service", environment, f"{admin}/readyz", tmp_path / f"api-{port}.log"
    )
    return process, f"http://127.0.0.1:{port}", admin


BUTTON_CLICK = "iglu:com.acme/button_click/jsonschema/1-0-0"
USER_ENTITY = "iglu:com.acme/user/jsonschema/1-0-0"


def write_iglu_dir(root: Path) -> Path:
    """An Iglu directory with ``com.acme/button_click`` and ``com.acme/user`` (1-0-0)."""
    for uri, properties in (
        (BUTTON_CLICK, {"button_id": {"type": "string"}}),
        (USER_ENTITY, {"id": {"type": "string"}}),
    ):
        vendor, name, _, version = uri.removeprefix("iglu:").split("/")
        path = root / vendor / name / "jsonschema"
        path.mkdir(parents=True)
        schema = {
            "self": {"vendor": vendor, "name": name, "format": "jsonschema", "version": version},
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
        (path / version).write_bytes(orjson.dumps(schema))
    return root
