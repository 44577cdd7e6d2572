"""Where the resolver looks schemas up: embedded directories and HTTP registries.

A registry answers a key with the schema's bytes, ``None`` when it does not have it, or
raises :class:`~tracking_common.iglu.errors.RegistryError` when it cannot tell (timeout,
connection refused, any status but 200 and 404). aiohttp is translated here; nothing else in
the resolver knows it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import aiohttp

from tracking_common.iglu.errors import RegistryError
from tracking_common.iglu.keys import SchemaKey

__all__ = [
    "EMBEDDED_CLASS_PRIORITY",
    "HTTP_CLASS_PRIORITY",
    "MAX_SCHEMA_BYTES",
    "EmbeddedRegistry",
    "HttpRegistry",
    "Index",
    "Registry",
    "RegistryInfo",
    "index_directory",
]

EMBEDDED_CLASS_PRIORITY: Final = 1
HTTP_CLASS_PRIORITY: Final = 100
"""Snowplow's class priorities: local repositories are asked before remote ones."""

MAX_SCHEMA_BYTES: Final = 1_048_576
"""Largest schema read (Iglu Central's largest is 32 KB); a bigger answer is a registry fault."""


@dataclass(frozen=True, slots=True)
class RegistryInfo:
    """A repository's place in the look-up order (Snowplow's ``name``, ``priority``,
    ``vendorPrefixes``)."""

    name: str
    priority: float = 0
    vendor_prefixes: tuple[str, ...] = field(default=())

    def matches(self, vendor: str) -> bool:
        """Whether ``vendor`` starts with one of the repository's vendor prefixes."""
        return any(vendor.startswith(prefix) for prefix in self.vendor_prefixes)


class Registry(Protocol):
    """One repository of schemas."""

    @property
    def info(self) -> RegistryInfo:
        """Its name and place in the look-up order."""
        ...

    @property
    def class_priority(self) -> int:
        """Snowplow's class priority (embedded before HTTP)."""
        ...

    def lacks(self, key: SchemaKey) -> bool:
        """True when the repository knows, without I/O, that it does not hold ``key``."""
        ...

    async def fetch(self, key: SchemaKey) -> bytes | None:
        """The schema's bytes, or None if the repository does not have it; RegistryError when
        it cannot tell."""
        ...

    async def close(self) -> None:
        """Release connections (idempotent)."""
        ...


Index = frozenset[tuple[str, ...]]
"""The ``(vendor, name, format, version)`` of every schema file in a directory."""


def index_directory(root: Path) -> Index:
    """Index the schema files under ``root`` (a few milliseconds per thousand files)."""
    return frozenset(
        path.relative_to(root).parts for path in root.glob("*/*/*/*") if path.is_file()
    )


class EmbeddedRegistry:
    """Schemas in a local Iglu directory (``<root>/<vendor>/<name>/<format>/<version>``).

    The directory is indexed when the registry is built (at start-up, before serving), as
    Snowplow's embedded repositories are fixed with the application: a key it does not hold is
    answered from the index, with no I/O, and a schema file is read in a worker thread, so a
    slow disk never stalls the event loop. Schemas added later are seen after a restart.
    """

    class_priority = EMBEDDED_CLASS_PRIORITY

    def __init__(self, info: RegistryInfo, root: Path, *, index: Index | None = None) -> None:
        self.info = info
        self.root = root
        self._index = index_directory(root) if index is None else index

    def lacks(self, key: SchemaKey) -> bool:
        """Whether the index has no file for ``key``."""
        return (key.vendor, key.name, key.format, key.version) not in self._index

    async def fetch(self, key: SchemaKey) -> bytes | None:
        """The schema file's bytes, or None."""
        if self.lacks(key):
            return None
        return await asyncio.to_thread(self._read, key)

    def _read(self, key: SchemaKey) -> bytes | None:
        path = self.root / key.relative_path
        try:
            with path.open("rb") as file:
                data = file.read(MAX_SCHEMA_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise RegistryError(self.info.name, f"cannot read {key.uri}: {exc.strerror}") from exc
        if len(data) > MAX_SCHEMA_BYTES:
            raise RegistryError(self.info.name, f"{key.uri} is over {MAX_SCHEMA_BYTES} bytes")
        return data

    async def close(self) -> None:
        """Nothing to release."""


class HttpRegistry:
    """A static Iglu repository or an Iglu Server: ``GET {uri}/schemas/{vendor}/{name}/
    {format}/{version}``, with the ``apikey`` header when one is configured.

    As in Snowplow's resolver, an Iglu Server is configured with ``uri`` ending in ``/api``.
    200 is the schema, 404 is "not here"; every other answer, a timeout (``timeout_s`` for the
    whole request) or a connection error raises RegistryError. Redirects are followed only
    without an API key (``http://iglucentral.com`` moves to https), so the key is never sent
    to another address. The API key is never logged.
    """

    class_priority = HTTP_CLASS_PRIORITY

    def __init__(
        self,
        info: RegistryInfo,
        uri: str,
        *,
        apikey: str | None = None,
        timeout_s: float = 2.0,
        pool_size: int = 8,
    ) -> None:
        self.info = info
        self.uri = uri.rstrip("/")
        self._headers = {"apikey": apikey} if apikey else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError(f"the registry client of {self.info.name} is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers=self._headers
            )
        return self._session

    def lacks(self, key: SchemaKey) -> bool:
        """Never known without asking."""
        return False

    async def fetch(self, key: SchemaKey) -> bytes | None:
        """GET the schema; None on 404."""
        session = self._open()
        url = f"{self.uri}/schemas/{key.url_path}"
        try:
            async with session.get(url, allow_redirects=not self._headers) as response:
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise RegistryError(self.info.name, f"answered {response.status}")
                data = await _read_capped(response.content)
        except TimeoutError as exc:
            raise RegistryError(self.info.name, "timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise RegistryError(self.info.name, f"{type(exc).__name__}") from exc
        if len(data) > MAX_SCHEMA_BYTES:
            raise RegistryError(self.info.name, f"{key.uri} is over {MAX_SCHEMA_BYTES} bytes")
        return data

    async def close(self) -> None:
        """Close the connection pool (idempotent)."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


async def _read_capped(stream: aiohttp.StreamReader) -> bytes:
    """The body, or its first ``MAX_SCHEMA_BYTES + 1`` bytes (enough to tell it is too big)."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_SCHEMA_BYTES:
        chunk = await stream.read(MAX_SCHEMA_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
