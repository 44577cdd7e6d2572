"""Fixtures of the ingest domain's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tracking_common.ingest import Ingestor

from tests.unit.common.ingest.ingest_support import MakeIngestor, building_ingestors


@pytest.fixture
async def make_ingestor(tmp_path: Path) -> AsyncIterator[MakeIngestor]:
    """Builds Ingestors over the bundled schemas and a test Iglu directory."""
    async with building_ingestors(tmp_path) as make:
        yield make


@pytest.fixture
def ingestor(make_ingestor: MakeIngestor) -> Ingestor:
    """An Ingestor with the defaults of the API's settings."""
    return make_ingestor()
