"""Snowplow's resolver configuration, read from a file, and the resolver built from it.

The file is a self-describing JSON ``iglu:com.snowplowanalytics.iglu/resolver-config/
jsonschema/1-0-x`` (1-0-0 to 1-0-3), checked against that bundled schema::

    {"schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
     "data": {"cacheSize": 500, "cacheTtl": 600, "repositories": [
       {"name": "Iglu Central", "priority": 0, "vendorPrefixes": ["com.snowplowanalytics"],
        "connection": {"http": {"uri": "https://iglucentral.com"}}},
       {"name": "Our Iglu Server", "priority": 0, "vendorPrefixes": ["com.acme"],
        "connection": {"http": {"uri": "https://iglu.acme.com/api", "apikey": "..."}}},
       {"name": "Local", "priority": 1, "vendorPrefixes": [],
        "connection": {"embedded": {"path": "iglu"}}}]}}

An ``embedded`` path is a directory on disk holding ``schemas/<vendor>/<name>/<format>/
<version>`` (as Snowplow's embedded repositories and static registries are laid out); a
relative path is taken from the configuration file's directory. Iglu Central's schemas are
always added, last, as the embedded repository :data:`BUNDLED_REGISTRY_NAME`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import SecretStr

from tracking_common.iglu.errors import SchemaValidationError
from tracking_common.iglu.keys import SchemaKey
from tracking_common.iglu.registries import (
    EmbeddedRegistry,
    HttpRegistry,
    Index,
    Registry,
    RegistryInfo,
    index_directory,
)
from tracking_common.iglu.repository import bundled_repository
from tracking_common.iglu.resolver import DEFAULT_CACHE_SIZE, IgluResolver
from tracking_common.iglu.validators import BUNDLED_SCHEMA_DIR

__all__ = [
    "BUNDLED_REGISTRY_NAME",
    "SCHEMA_DIR_REGISTRY_NAME",
    "EmbeddedConnection",
    "HttpConnection",
    "RepositoryConfig",
    "ResolverConfig",
    "ResolverConfigError",
    "build_resolver",
    "load_resolver_config",
]

BUNDLED_REGISTRY_NAME: Final = "Iglu Central (bundled)"
SCHEMA_DIR_REGISTRY_NAME: Final = "IGLU_SCHEMA_DIR"
_BUNDLED_PRIORITY: Final = 2**31 - 1  # after every configured embedded repository
_CONFIG_SCHEMA: Final = re.compile(
    r"iglu:com\.snowplowanalytics\.iglu/resolver-config/jsonschema/1-0-[0-3]"
)
MAX_CONFIG_BYTES: Final = 1_048_576


class ResolverConfigError(ValueError):
    """The resolver configuration file cannot be read or is not a valid configuration."""


@dataclass(frozen=True, slots=True)
class HttpConnection:
    """A static registry or an Iglu Server (``uri`` ending in ``/api``)."""

    uri: str
    apikey: SecretStr | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class EmbeddedConnection:
    """A directory holding ``schemas/<vendor>/...``."""

    path: Path


@dataclass(frozen=True, slots=True)
class RepositoryConfig:
    """One entry of ``repositories``."""

    info: RegistryInfo
    connection: HttpConnection | EmbeddedConnection


@dataclass(frozen=True, slots=True)
class ResolverConfig:
    """The ``data`` of a resolver configuration; ``cache_ttl_s`` None means no expiry."""

    cache_size: int
    cache_ttl_s: float | None
    repositories: tuple[RepositoryConfig, ...]


def load_resolver_config(path: Path) -> ResolverConfig:
    """Read and check the configuration at ``path``; raise ResolverConfigError saying why."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ResolverConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ResolverConfigError(f"{path} is over {MAX_CONFIG_BYTES} bytes")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ResolverConfigError(f"{path} is not JSON: {exc}") from exc
    return parse_resolver_config(document, base_dir=path.parent)


def parse_resolver_config(document: Any, *, base_dir: Path) -> ResolverConfig:
    """Check a decoded configuration document; raise ResolverConfigError saying why."""
    if not isinstance(document, dict) or set(document) != {"schema", "data"}:
        raise ResolverConfigError('a resolver configuration is {"schema": ..., "data": {...}}')
    uri = document["schema"]
    if not isinstance(uri, str) or not _CONFIG_SCHEMA.fullmatch(uri):
        raise ResolverConfigError(
            "schema must be iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-x "
            f"(x from 0 to 3), not {str(uri)[:200]!r}"
        )
    data = document["data"]
    try:
        bundled_repository().validate(SchemaKey.parse(uri), data)
    except SchemaValidationError as exc:
        where = f" at data/{exc.path}" if exc.path else ""
        raise ResolverConfigError(f"invalid resolver configuration{where}: {exc.detail}") from exc
    repositories = tuple(_repository(entry, base_dir) for entry in data["repositories"])
    names = [repository.info.name for repository in repositories]
    if len(set(names)) != len(names):
        raise ResolverConfigError("repository names must be unique")
    cache_size = int(data["cacheSize"])
    if cache_size < 1:
        raise ResolverConfigError("cacheSize must be at least 1")
    ttl = data.get("cacheTtl")
    return ResolverConfig(cache_size, None if ttl is None else float(ttl), repositories)


def _repository(entry: dict[str, Any], base_dir: Path) -> RepositoryConfig:
    info = RegistryInfo(
        name=entry["name"],
        priority=entry["priority"],
        vendor_prefixes=tuple(entry["vendorPrefixes"]),
    )
    connection = entry["connection"]
    if "http" in connection:
        uri = connection["http"]["uri"]
        if not uri.startswith(("http://", "https://")):
            raise ResolverConfigError(f"repository {info.name!r}: uri must be http(s)://...")
        apikey = connection["http"].get("apikey")
        return RepositoryConfig(info, HttpConnection(uri, SecretStr(apikey) if apikey else None))
    path = base_dir / connection["embedded"]["path"]
    if not path.is_dir():
        raise ResolverConfigError(f"repository {info.name!r}: {path} is not a directory")
    return RepositoryConfig(info, EmbeddedConnection(path))


@functools.cache
def _bundled_index() -> Index:
    # Package data never changes while the process runs: indexed once, however many resolvers.
    return index_directory(BUNDLED_SCHEMA_DIR)


def build_resolver(
    config: ResolverConfig | None,
    *,
    schema_dir: Path | None = None,
    timeout_s: float = 2.0,
    failure_ttl_s: float = 5.0,
) -> IgluResolver:
    """The resolver for ``config`` (None: no registries but the local ones).

    ``schema_dir`` (an Iglu directory without the ``schemas/`` level, ``IGLU_SCHEMA_DIR``)
    is an embedded repository asked before the configured ones of the same class and
    priority; the bundled Iglu Central comes after every embedded repository.
    """
    registries: list[Registry] = []
    if schema_dir is not None:
        registries.append(EmbeddedRegistry(RegistryInfo(SCHEMA_DIR_REGISTRY_NAME), schema_dir))
    for repository in config.repositories if config is not None else ():
        connection = repository.connection
        if isinstance(connection, HttpConnection):
            apikey = connection.apikey.get_secret_value() if connection.apikey else None
            registries.append(
                HttpRegistry(repository.info, connection.uri, apikey=apikey, timeout_s=timeout_s)
            )
        else:
            registries.append(EmbeddedRegistry(repository.info, connection.path / "schemas"))
    bundled = RegistryInfo(BUNDLED_REGISTRY_NAME, priority=_BUNDLED_PRIORITY)
    registries.append(EmbeddedRegistry(bundled, BUNDLED_SCHEMA_DIR, index=_bundled_index()))
    return IgluResolver(
        registries,
        cache_size=config.cache_size if config is not None else DEFAULT_CACHE_SIZE,
        cache_ttl_s=config.cache_ttl_s if config is not None else None,
        timeout_s=timeout_s,
        failure_ttl_s=failure_ttl_s,
    )
