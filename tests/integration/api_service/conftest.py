"""Fixtures of the API's integration tests (helpers live in ``api_it``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.api_service.api_it import LiveApi, Topics
from tests.integration.api_service.served import served

__all__ = ["served"]


@pytest.fixture
async def topics(kafka_bootstrap: str) -> Topics:
    """Fresh events (2 partitions) and bad-events topics on the session's broker."""
    return await Topics(kafka_bootstrap).create()


@pytest.fixture
async def live_api(topics: Topics) -> AsyncIterator[LiveApi]:
    """The app in-process over the real publisher, ready."""
    api = LiveApi(topics)
    await api.start()
    yield api
    await api.close()
