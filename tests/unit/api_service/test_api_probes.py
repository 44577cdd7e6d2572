"""Kafka failures, the probes, the admin app, the no-op route and the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest
from api_service.admin import create_admin_app

from tests.unit.api_service.api_support import Api, MakeApi, page_view, tracker_page_view


@pytest.mark.parametrize("kind", ["unavailable", "timeout", "buffer_full", "error"])
async def test_kafka_not_acknowledging_is_503_with_retry_after(api: Api, kind: str) -> None:
    api.publisher.fail_with = kind

    answer = await api.v1({"events": [page_view(), page_view()]})

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(api.settings.api_retry_after_s)
    assert answer.json()["error"]["code"] == "kafka_unavailable"


async def test_rejected_events_must_be_acknowledged_too(api: Api) -> None:
    api.publisher.fail_with = "timeout"

    partial = await api.v1({"events": [page_view(), {"event_type": "struct"}]})
    tracker = await api.tp2([tracker_page_view()])
    pixel = await api.client.get("/i", params=tracker_page_view())

    assert [partial.status_code, tracker.status_code, pixel.status_code] == [503, 503, 503]


async def test_a_kafka_outage_fails_neither_probe(api: Api) -> None:
    # Every replica shares the outage: failing readiness would empty the Service and leave
    # clients the ingress's bare 502 instead of the API's 503 with Retry-After and CORS.
    assert (await api.client.get("/readyz")).status_code == 200
    api.publisher.connected = False

    alive = await api.client.get("/healthz")
    ready = await api.client.get("/readyz")

    assert alive.status_code == 200
    assert ready.status_code == 200


async def test_readiness_waits_for_the_first_kafka_connection_only(api: Api) -> None:
    api.publisher.connected = False
    starting = await api.client.get("/readyz")
    api.publisher.connected = True
    connected = await api.client.get("/readyz")
    api.publisher.connected = False
    outage = await api.client.get("/readyz")

    assert starting.status_code == 503
    assert starting.json()["reasons"] == ["starting"]
    assert [connected.status_code, outage.status_code] == [200, 200]


async def test_readiness_fails_while_draining(api: Api) -> None:
    assert (await api.client.get("/readyz")).status_code == 200

    api.pipeline.draining = True
    answer = await api.client.get("/readyz")

    assert answer.status_code == 503
    assert answer.json()["reasons"] == ["shutting_down"]
    assert (await api.v1(page_view())).status_code == 200  # still serving during the grace


async def test_the_admin_app_serves_metrics_and_probes(api: Api) -> None:
    admin = create_admin_app(api.pipeline, lambda: b"tracking_api_requests_total 1.0\n")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=admin), base_url="http://admin.test"
    ) as client:
        metrics = await client.get("/metrics")
        alive = await client.get("/healthz")
        api.pipeline.draining = True
        ready = await client.get("/readyz")

    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert metrics.text == "tracking_api_requests_total 1.0\n"
    assert alive.status_code == 200
    assert ready.status_code == 503


async def test_the_noop_route_parses_but_publishes_nothing(make_api: MakeApi) -> None:
    api = make_api(api_bench_noop_endpoint=True)

    answer = await api.client.post(
        "/bench/noop", json={"events": [page_view()]}, headers={"x-api-key": api.settings.keys[0]}
    )

    assert answer.status_code == 200
    assert answer.json()["accepted"] == 1
    assert api.publisher.calls == 0


async def test_the_noop_route_is_off_by_default(api: Api) -> None:
    answer = await api.client.post("/bench/noop", json=page_view())

    assert answer.status_code == 404


async def test_the_openapi_document_shows_the_event_model_with_examples(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()

    schemas = document["components"]["schemas"]
    assert {"TrackedEvent", "PageView", "SelfDescribing", "V1Batch", "IngestResult"} <= set(schemas)
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert {"page_view", "batch"} <= set(body["examples"])
    responses = document["paths"]["/v1/events"]["post"]["responses"]
    assert {"200", "207", "400", "401", "413", "429", "503"} <= set(responses)


async def test_the_request_id_is_echoed(api: Api) -> None:
    answer = await api.v1(page_view(), headers={"x-request-id": "req-123"})

    assert answer.headers["x-request-id"] == "req-123"
