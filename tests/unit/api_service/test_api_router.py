"""The ingest router in front of FastAPI: what it serves, what it leaves to FastAPI, and a
handler failure answered as a 500 of ours rather than a dropped connection."""

from __future__ import annotations

import pytest
from api_service.exchange import Exchange
from api_service.main import public_config

from tests.unit.api_service.api_support import AUTH, Api, MakeApi, page_view


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/events"),
        ("PUT", "/v1/events"),
        ("HEAD", "/i"),
        ("GET", "/com.snowplowanalytics.snowplow/tp2"),
        ("OPTIONS", "/v1/events"),
    ],
)
async def test_other_methods_on_ingest_paths_are_405_from_fastapi(
    api: Api, method: str, path: str
) -> None:
    answer = await api.client.request(method, path, headers=AUTH)

    assert answer.status_code == 405


async def test_the_openapi_document_describes_the_ingest_routes(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]

    assert set(paths["/v1/events"]) == {"post"}
    assert set(paths["/com.snowplowanalytics.snowplow/tp2"]) == {"post"}
    assert set(paths["/i"]) == {"get"}
    assert set(paths["/r/tp2"]) == {"get"}
    assert "/bench/noop" not in paths


async def test_the_docs_and_probes_are_still_served(api: Api) -> None:
    assert (await api.client.get("/docs")).status_code == 200
    assert (await api.client.get("/healthz")).json() == {"status": "alive"}


async def test_a_failing_handler_is_a_json_500_with_the_request_id(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(_exchange: Exchange) -> bytes:
        raise RuntimeError("a bug")

    monkeypatch.setattr(api.pipeline, "read_body", broken)

    answer = await api.v1(page_view(), headers={"x-request-id": "req-1"})

    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert answer.headers["x-request-id"] == "req-1"
    assert api.pipeline.in_flight == 0
    assert api.publisher.calls == 0


async def test_the_noop_route_is_served_only_when_enabled(make_api: MakeApi) -> None:
    off = make_api()
    on = make_api(api_bench_noop_endpoint=True)

    assert (await off.client.post("/bench/noop", json=page_view(), headers=AUTH)).status_code == 404
    answer = await on.client.post("/bench/noop", json=page_view(), headers=AUTH)
    assert answer.status_code == 200
    assert on.publisher.calls == 0


def test_the_public_server_runs_the_c_parser_without_an_access_log(api: Api) -> None:
    config = public_config(api.settings, api.app)

    assert (config.http, config.access_log, config.proxy_headers) == ("httptools", False, False)
