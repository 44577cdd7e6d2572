"""HTTP registries and the resolver against real servers: a static repository over Iglu
Central's tree, and an Iglu Server that checks its API key and can fail or hang."""

from __future__ import annotations

import time

import pytest
from tracking_common.iglu import (
    RegistryUnavailableError,
    SchemaKey,
    SchemaNotFoundError,
    SchemaValidationError,
)
from tracking_common.iglu.errors import RegistryError
from tracking_common.iglu.registries import HttpRegistry, RegistryInfo
from tracking_common.iglu.resolver import IgluResolver

from tests.integration.iglu.conftest import APIKEY
from tests.integration.iglu.registry_servers import IgluServer, StaticRepository
from tests.support.services import free_port

WEB_PAGE = SchemaKey.parse("iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0")
CLICK = SchemaKey.parse("iglu:com.acme/button_click/jsonschema/1-0-0")
MISSING = SchemaKey.parse("iglu:com.acme/nothing/jsonschema/1-0-0")
PAGE_ID = {"id": "6f5c3c8e-6a6b-4b4e-9c62-6b8e0f0f2d6d"}


def server_registry(
    server: IgluServer, apikey: str = APIKEY, *, timeout_s: float = 2.0
) -> HttpRegistry:
    info = RegistryInfo("Iglu Server")
    return HttpRegistry(info, server.url + "/api", apikey=apikey, timeout_s=timeout_s)


async def test_a_static_repository_serves_schemas_and_404s_the_rest(
    static_repository: StaticRepository,
) -> None:
    registry = HttpRegistry(RegistryInfo("static"), static_repository.url + "/")
    try:
        schema = await registry.fetch(WEB_PAGE)
        assert schema is not None
        assert b'"web_page"' in schema
        assert await registry.fetch(MISSING) is None
    finally:
        await registry.close()


async def test_a_static_repository_that_moved_is_followed_but_never_with_a_key(
    static_repository: StaticRepository,
) -> None:
    moved = static_repository.url + "/moved"
    open_registry = HttpRegistry(RegistryInfo("moved"), moved)
    keyed_registry = HttpRegistry(RegistryInfo("moved with key"), moved, apikey=APIKEY)
    try:
        assert await open_registry.fetch(WEB_PAGE) is not None
        with pytest.raises(RegistryError, match="answered 301"):
            await keyed_registry.fetch(WEB_PAGE)
    finally:
        await open_registry.close()
        await keyed_registry.close()


async def test_the_resolver_validates_with_schemas_from_a_static_repository(
    static_repository: StaticRepository,
) -> None:
    iglu = IgluResolver([HttpRegistry(RegistryInfo("static"), static_repository.url)])
    try:
        resolution = await iglu.resolve([WEB_PAGE, MISSING])
        resolution.validate(WEB_PAGE, PAGE_ID)
        with pytest.raises(SchemaValidationError):
            resolution.validate(WEB_PAGE, {"id": "nope"})
        with pytest.raises(SchemaNotFoundError):
            resolution.validate(MISSING, {})
    finally:
        await iglu.close()


async def test_an_iglu_server_is_asked_with_its_api_key(iglu_server: IgluServer) -> None:
    registry = server_registry(iglu_server)
    try:
        assert await registry.fetch(CLICK) is not None
        assert await registry.fetch(MISSING) is None
    finally:
        await registry.close()


async def test_a_wrong_api_key_is_a_registry_failure_that_names_no_key(
    iglu_server: IgluServer,
) -> None:
    registry = server_registry(iglu_server, apikey="wrong-key-0000")
    try:
        with pytest.raises(RegistryError, match="answered 401") as caught:
            await registry.fetch(CLICK)
        assert "wrong-key-0000" not in str(caught.value)
    finally:
        await registry.close()


async def test_a_failing_server_makes_the_schema_unavailable_until_it_recovers(
    iglu_server: IgluServer, static_repository: StaticRepository
) -> None:
    static = HttpRegistry(RegistryInfo("static"), static_repository.url)
    iglu = IgluResolver([static, server_registry(iglu_server)], failure_ttl_s=0)
    iglu_server.mode = "failing"
    try:
        with pytest.raises(RegistryUnavailableError) as caught:
            await iglu.resolve([CLICK])
        assert caught.value.registries == ("Iglu Server",)

        iglu_server.mode = "ok"
        (await iglu.resolve([CLICK])).validate(CLICK, {"button_id": "signup"})
    finally:
        await iglu.close()


async def test_a_slow_server_is_cut_off_at_the_deadline(iglu_server: IgluServer) -> None:
    iglu_server.mode = "slow"
    iglu = IgluResolver([server_registry(iglu_server, timeout_s=5.0)], timeout_s=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(RegistryUnavailableError, match=r"within 0\.2 s"):
            await iglu.resolve([CLICK])
        assert time.monotonic() - started < 2.0
        assert iglu_server.requests == 1
    finally:
        await iglu.close()


async def test_a_registry_request_has_its_own_timeout(iglu_server: IgluServer) -> None:
    iglu_server.mode = "slow"
    registry = server_registry(iglu_server, timeout_s=0.2)
    try:
        with pytest.raises(RegistryError, match="timed out"):
            await registry.fetch(CLICK)
    finally:
        await registry.close()


async def test_a_registry_nobody_listens_on_is_unavailable() -> None:
    registry = HttpRegistry(RegistryInfo("gone"), f"http://127.0.0.1:{free_port()}")
    iglu = IgluResolver([registry])
    try:
        with pytest.raises(RegistryUnavailableError) as caught:
            await iglu.resolve([CLICK])
        assert caught.value.registries == ("gone",)
    finally:
        await iglu.close()


async def test_404_from_every_registry_is_not_found(
    iglu_server: IgluServer, static_repository: StaticRepository
) -> None:
    static = HttpRegistry(RegistryInfo("static"), static_repository.url)
    iglu = IgluResolver([static, server_registry(iglu_server)])
    try:
        resolution = await iglu.resolve([MISSING])
        with pytest.raises(SchemaNotFoundError):
            resolution.validate(MISSING, {})
        assert iglu_server.requests == 1
    finally:
        await iglu.close()


async def test_a_key_too_long_for_a_file_name_is_unknown_without_a_request(
    iglu_server: IgluServer,
) -> None:
    key = SchemaKey.parse(f"iglu:com.acme/{'n' * 300}/jsonschema/1-0-0")
    iglu = IgluResolver([server_registry(iglu_server)])
    try:
        with pytest.raises(SchemaNotFoundError):
            (await iglu.resolve([key])).validate(key, {})
        assert iglu_server.requests == 0
    finally:
        await iglu.close()
