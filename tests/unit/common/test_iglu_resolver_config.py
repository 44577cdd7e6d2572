"""Snowplow's resolver configuration: reading, checking, and the resolver built from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tracking_common.iglu import SchemaKey, SchemaNotFoundError, SchemaValidationError
from tracking_common.iglu.registries import EmbeddedRegistry, HttpRegistry, RegistryInfo
from tracking_common.iglu.resolver_config import (
    BUNDLED_REGISTRY_NAME,
    SCHEMA_DIR_REGISTRY_NAME,
    EmbeddedConnection,
    HttpConnection,
    ResolverConfigError,
    build_resolver,
    load_resolver_config,
)

CONFIG_SCHEMA = "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3"
WEB_PAGE = SchemaKey.parse("iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0")


def repository(name: str, connection: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "priority": 0, "vendorPrefixes": [], "connection": connection, **fields}


def config(*repositories: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {
        "schema": CONFIG_SCHEMA,
        "data": {"cacheSize": 500, "repositories": list(repositories), **data},
    }


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "resolver.json"
    path.write_bytes(orjson.dumps(document))
    return path


def test_a_snowplow_configuration_is_read(tmp_path: Path) -> None:
    (tmp_path / "local" / "schemas").mkdir(parents=True)
    path = write(
        tmp_path,
        config(
            repository(
                "Iglu Central",
                {"http": {"uri": "https://iglucentral.com"}},
                vendorPrefixes=["com.snowplowanalytics"],
            ),
            repository(
                "Ours",
                {"http": {"uri": "https://iglu.acme.test/api", "apikey": "secret-key-1234"}},
                priority=2,
            ),
            repository("Local", {"embedded": {"path": "local"}}, priority=1),
            cacheTtl=600,
        ),
    )

    loaded = load_resolver_config(path)

    assert (loaded.cache_size, loaded.cache_ttl_s) == (500, 600.0)
    central, ours, local = loaded.repositories
    assert central.info.vendor_prefixes == ("com.snowplowanalytics",)
    assert central.connection == HttpConnection("https://iglucentral.com")
    assert isinstance(ours.connection, HttpConnection)
    assert ours.connection.apikey is not None
    assert ours.connection.apikey.get_secret_value() == "secret-key-1234"
    assert "secret-key-1234" not in repr(loaded)
    assert ours.info.priority == 2
    assert local.connection == EmbeddedConnection(tmp_path / "local")


@pytest.mark.parametrize("version", ["1-0-0", "1-0-1", "1-0-2"])
def test_older_configuration_versions_are_read(tmp_path: Path, version: str) -> None:
    document = config(repository("C", {"http": {"uri": "http://iglucentral.com"}}))
    document["schema"] = CONFIG_SCHEMA.replace("1-0-3", version)

    assert load_resolver_config(write(tmp_path, document)).cache_ttl_s is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "is {"),
        ({"schema": CONFIG_SCHEMA}, "is {"),
        ({**config(), "schema": "iglu:com.acme/x/jsonschema/1-0-0"}, "resolver-config"),
        ({**config(), "data": {"repositories": []}}, "cacheSize"),
        (config(repository("C", {"ftp": {"uri": "x"}})), "invalid resolver configuration"),
        (config(repository("C", {"http": {"uri": "file:///etc"}})), "http"),
        (config(repository("C", {"embedded": {"path": "nowhere"}})), "not a directory"),
        (
            config(
                repository("C", {"http": {"uri": "http://a.test"}}),
                repository("C", {"http": {"uri": "http://b.test"}}),
            ),
            "unique",
        ),
        (config(cacheSize=0), "cacheSize"),
        (config(cacheTtl=-1), "invalid resolver configuration"),
    ],
)
def test_a_bad_configuration_says_why(tmp_path: Path, document: Any, message: str) -> None:
    with pytest.raises(ResolverConfigError, match=message):
        load_resolver_config(write(tmp_path, document))


def test_a_file_that_is_missing_or_not_json_says_why(tmp_path: Path) -> None:
    with pytest.raises(ResolverConfigError, match="cannot read"):
        load_resolver_config(tmp_path / "missing.json")
    path = tmp_path / "bad.json"
    path.write_text("{")
    with pytest.raises(ResolverConfigError, match="not JSON"):
        load_resolver_config(path)


async def test_the_resolver_has_the_schema_dir_first_and_the_bundle_last(tmp_path: Path) -> None:
    (tmp_path / "local" / "schemas").mkdir(parents=True)
    path = write(
        tmp_path,
        config(
            repository("Local", {"embedded": {"path": "local"}}),
            repository("Remote", {"http": {"uri": "http://127.0.0.1:9/"}}),
        ),
    )
    iglu = build_resolver(load_resolver_config(path), schema_dir=tmp_path)
    try:
        names = [registry.info.name for registry in iglu.order("com.other")]
        assert names == [SCHEMA_DIR_REGISTRY_NAME, "Local", BUNDLED_REGISTRY_NAME, "Remote"]
        local = iglu.registries[1]
        assert isinstance(local, EmbeddedRegistry)
        assert local.root == tmp_path / "local" / "schemas"
        remote = iglu.registries[2]
        assert isinstance(remote, HttpRegistry)
        assert remote.uri == "http://127.0.0.1:9"
    finally:
        await iglu.close()


async def test_without_a_configuration_the_bundled_iglu_central_is_resolved() -> None:
    iglu = build_resolver(None)
    try:
        missing = SchemaKey.parse("iglu:com.acme/nothing/jsonschema/1-0-0")
        resolution = await iglu.resolve([WEB_PAGE, missing])
        resolution.validate(WEB_PAGE, {"id": "6f5c3c8e-6a6b-4b4e-9c62-6b8e0f0f2d6d"})
        with pytest.raises(SchemaValidationError):
            resolution.validate(WEB_PAGE, {"id": "not-a-uuid"})
        with pytest.raises(SchemaNotFoundError):
            resolution.validate(missing, {})
    finally:
        await iglu.close()


async def test_an_embedded_directory_is_indexed_when_the_registry_is_built(
    tmp_path: Path,
) -> None:
    click = SchemaKey.parse("iglu:com.acme/click/jsonschema/1-0-0")
    later = SchemaKey.parse("iglu:com.acme/later/jsonschema/1-0-0")
    for key in (click, later):
        (tmp_path / key.relative_path).parent.mkdir(parents=True)
    (tmp_path / click.relative_path).write_bytes(b"{}")
    registry = EmbeddedRegistry(RegistryInfo("local"), tmp_path)
    (tmp_path / later.relative_path).write_bytes(b"{}")

    assert await registry.fetch(click) == b"{}"
    assert not registry.lacks(click)
    assert registry.lacks(later)  # added after start-up: seen after a restart
    assert await registry.fetch(later) is None
