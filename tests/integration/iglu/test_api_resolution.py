"""The API resolving schemas through ``IGLU_RESOLVER_CONFIG`` from real registries: checked
events, unknown schemas (400), and a registry outage answered 503 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest

from tests.integration.iglu.conftest import APIKEY
from tests.integration.iglu.registry_servers import IgluServer, StaticRepository
from tests.unit.api_service.api_support import (
    Api,
    building_apis,
    button_click,
    tracker_page_view,
)

CONTEXTS = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
WEB_PAGE = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"
PAGE_ID = "6f5c3c8e-6a6b-4b4e-9c62-6b8e0f0f2d6d"

MakeApi = Callable[..., Api]


def resolver_config(path: Path, iglu_server: IgluServer, static: StaticRepository) -> Path:
    document = {
        "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
        "data": {
            "cacheSize": 100,
            "cacheTtl": 600,
            "repositories": [
                {
                    "name": "Iglu Central mirror",
                    "priority": 0,
                    "vendorPrefixes": ["com.snowplowanalytics"],
                    "connection": {"http": {"uri": static.url}},
                },
                {
                    "name": "Acme Iglu Server",
                    "priority": 0,
                    "vendorPrefixes": ["com.acme"],
                    "connection": {"http": {"uri": iglu_server.url + "/api", "apikey": APIKEY}},
                },
            ],
        },
    }
    path.write_bytes(orjson.dumps(document))
    return path


@pytest.fixture
async def make_api() -> AsyncIterator[MakeApi]:
    """Build an :class:`Api` over a fake publisher; its client and registries close at teardown."""
    async with building_apis() as make:
        yield make


@pytest.fixture
def api(
    make_api: MakeApi, tmp_path: Path, iglu_server: IgluServer, static_repository: StaticRepository
) -> Api:
    config = resolver_config(tmp_path / "resolver.json", iglu_server, static_repository)
    return make_api(iglu_resolver_config=config, iglu_resolve_timeout_s=0.5)


def web_page_context(page_id: str) -> str:
    return orjson.dumps(
        {"schema": CONTEXTS, "data": [{"schema": WEB_PAGE, "data": {"id": page_id}}]}
    ).decode()


async def test_events_are_checked_against_schemas_from_the_iglu_server(api: Api) -> None:
    accepted = await api.v1(button_click("signup"))
    rejected = await api.v1(button_click(42))

    assert accepted.status_code == 200, accepted.text
    assert rejected.status_code == 400
    assert rejected.json()["errors"][0]["errors"][0]["code"] == "schema_violation"


async def test_a_schema_no_registry_has_is_rejected_per_event(api: Api) -> None:
    event = button_click()
    event["event"]["schema"] = "iglu:com.acme/nothing/jsonschema/1-0-0"

    answer = await api.v1({"events": [event, button_click()]})

    assert answer.status_code == 207
    assert answer.json()["errors"][0]["errors"][0]["code"] == "unknown_schema"


async def test_a_failing_registry_answers_503_with_retry_after_and_keeps_nothing(
    api: Api, iglu_server: IgluServer
) -> None:
    iglu_server.mode = "failing"

    v1 = await api.v1(button_click())
    unstruct = {"schema": UNSTRUCT, "data": button_click()["event"]}
    tp2 = await api.tp2([tracker_page_view(e="ue", ue_pr=orjson.dumps(unstruct).decode())])

    for answer in (v1, tp2):
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == str(api.settings.api_retry_after_s)
        assert answer.json()["error"]["code"] == "schema_registry_unavailable"
        assert "Acme Iglu Server" in answer.json()["error"]["message"]
    assert api.publisher.messages == []


async def test_a_slow_registry_answers_503_at_the_deadline(
    api: Api, iglu_server: IgluServer
) -> None:
    iglu_server.mode = "slow"

    answer = await api.v1(button_click())

    assert answer.status_code == 503
    assert "within 0.5 s" in answer.json()["error"]["message"]
    assert api.publisher.messages == []


async def test_an_outage_of_an_unrelated_registry_does_not_stop_other_events(
    api: Api, iglu_server: IgluServer
) -> None:
    iglu_server.mode = "failing"

    answer = await api.tp2([tracker_page_view(co=web_page_context(PAGE_ID))])

    assert answer.status_code == 200, answer.text


async def test_the_bundled_iglu_central_checks_tracker_entities_without_configuration(
    make_api: MakeApi,
) -> None:
    api = make_api()

    good = await api.tp2([tracker_page_view(co=web_page_context(PAGE_ID))])
    bad = await api.tp2([tracker_page_view(co=web_page_context("not-a-uuid"))])

    assert good.status_code == 200, good.text
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["errors"][0]["code"] == "schema_violation"


async def test_a_schema_that_does_not_compile_is_rejected_per_event(
    api: Api, iglu_server: IgluServer
) -> None:
    path = iglu_server.root / "com.acme" / "broken" / "jsonschema"
    path.mkdir(parents=True)
    (path / "1-0-0").write_bytes(orjson.dumps({"type": "no-such-type"}))
    event = button_click()
    event["event"]["schema"] = "iglu:com.acme/broken/jsonschema/1-0-0"

    answer = await api.v1(event)

    assert answer.status_code == 400
    (issue,) = answer.json()["errors"][0]["errors"]
    assert (issue["path"], issue["code"]) == ("/event/schema", "unusable_schema")
    assert "Acme Iglu Server" in issue["message"]
    (bad,) = api.publisher.values(api.settings.bad_events_topic)
    assert bad["data"]["errors"][0]["code"] == "unusable_schema"
