"""Fixtures of the Iglu integration tests: real registries over HTTP on local ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from tracking_common.iglu import BUNDLED_SCHEMA_DIR

from tests.integration.iglu.registry_servers import IgluServer, StaticRepository
from tests.unit.api_service.api_support import BUTTON_CLICK_SCHEMA

APIKEY = "6b1d1a4e-iglu-read-key"


@pytest.fixture
async def static_repository() -> AsyncIterator[StaticRepository]:
    """A static repository serving the bundled Iglu Central tree."""
    server = StaticRepository(BUNDLED_SCHEMA_DIR)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def iglu_server(tmp_path: Path) -> AsyncIterator[IgluServer]:
    """An Iglu Server holding ``com.acme/button_click`` 1-0-0, read with :data:`APIKEY`."""
    root = tmp_path / "iglu-server"
    path = root / "com.acme" / "button_click" / "jsonschema"
    path.mkdir(parents=True)
    (path / "1-0-0").write_bytes(orjson.dumps(BUTTON_CLICK_SCHEMA))
    server = IgluServer(root, APIKEY)
    await server.start()
    yield server
    await server.stop()
