"""The API's operational signals: readiness, unmatched routes, the concurrency bound, zeros."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from api_service.metrics import KAFKA_ERROR_KINDS, ApiMetrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from tracking_common.messages import Message

from tests.unit.api_service.api_support import (
    Api,
    FakePublisher,
    make_settings,
    page_view,
    tracker_page_view,
)

ORIGIN = "https://shop.example"


class MeteredApi(Api):
    """The app with its metrics on a private provider the test reads back."""

    def __init__(self, publisher: FakePublisher | None = None, **overrides: Any) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        metrics = ApiMetrics(self.provider.get_meter("test"))
        super().__init__(make_settings(**overrides), publisher or FakePublisher(), metrics)

    def points(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Current values of ``name`` by sorted label pairs."""
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            tuple(sorted((k, str(v)) for k, v in (point.attributes or {}).items())): float(
                getattr(point, "value", 0)
            )
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        }


@pytest.fixture
async def metered() -> AsyncIterator[MeteredApi]:
    api = MeteredApi()
    yield api
    await api.client.aclose()


async def test_counters_with_known_labels_start_at_zero(metered: MeteredApi) -> None:
    assert metered.points("tracking_api_kafka_errors") == {
        (("kind", kind),): 0.0 for kind in KAFKA_ERROR_KINDS
    }
    for name in ("rate_limited", "auth_failures", "requests_shed"):
        assert metered.points(f"tracking_api_{name}") == {(): 0.0}


async def test_unmatched_paths_are_counted_under_one_route_label(metered: MeteredApi) -> None:
    for path in ("/nope", "/wp-admin/setup.php", "/v1/events/extra"):
        assert (await metered.client.get(path)).status_code == 404
    assert (await metered.client.get("/v1/events")).status_code == 405

    requests = metered.points("tracking_api_requests")
    assert requests[(("route", "unmatched"), ("status", "404"))] == 3
    assert requests[(("route", "unmatched"), ("status", "405"))] == 1
    assert {dict(labels)["route"] for labels in requests} == {"unmatched"}


async def test_a_kafka_outage_is_a_503_with_retry_after_and_cors_and_shows_in_metrics(
    metered: MeteredApi,
) -> None:
    assert metered.points("tracking_api_ready") == {(): 1.0}  # connected once: started
    metered.publisher.connected = False
    metered.publisher.fail_with = "unavailable"

    answer = await metered.tp2([tracker_page_view()], headers={"origin": ORIGIN})

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(metered.settings.api_retry_after_s)
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert (await metered.client.get("/readyz")).status_code == 200
    assert metered.points("tracking_api_ready") == {(): 1.0}
    assert metered.points("tracking_api_kafka_available") == {(): 0.0}
    assert metered.points("tracking_api_kafka_errors")[(("kind", "unavailable"),)] == 1


class GatedPublisher(FakePublisher):
    """Holds every publish until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def publish(self, messages: Sequence[Message]) -> None:
        """Wait for the gate, then keep ``messages``."""
        self.waiting += 1
        await self.gate.wait()
        await super().publish(messages)


async def test_requests_beyond_the_concurrency_bound_get_503_with_retry_after() -> None:
    publisher = GatedPublisher()
    api = MeteredApi(publisher, api_max_concurrent_requests=2)
    try:
        held = [asyncio.create_task(api.v1(page_view())) for _ in range(2)]
        async with asyncio.timeout(10):
            while publisher.waiting < 2:  # noqa: ASYNC110 - the two requests reach Kafka
                await asyncio.sleep(0.01)

        refused = await api.tp2([tracker_page_view()], headers={"origin": ORIGIN})

        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "overloaded"
        assert refused.headers["retry-after"] == str(api.settings.api_retry_after_s)
        assert refused.headers["access-control-allow-origin"] == ORIGIN
        assert api.points("tracking_api_requests_shed") == {(): 1.0}
        publisher.gate.set()
        assert [answer.status_code for answer in await asyncio.gather(*held)] == [200, 200]
        assert (await api.v1(page_view())).status_code == 200
    finally:
        await api.client.aclose()


def test_the_bound_is_a_setting_with_a_floor() -> None:
    assert make_settings().api_max_concurrent_requests == 256
    with pytest.raises(ValueError, match="api_max_concurrent_requests"):
        make_settings(api_max_concurrent_requests=0)


async def test_the_ready_gauge_reads_what_readyz_answers(metered: MeteredApi) -> None:
    assert metered.points("tracking_api_ready") == {(): 1.0}
    metered.pipeline.draining = True
    assert (await metered.client.get("/readyz")).status_code == 503
    assert metered.points("tracking_api_ready") == {(): 0.0}
