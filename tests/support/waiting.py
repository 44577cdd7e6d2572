"""Waiting on a condition with a deadline (never a bare sleep)."""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_until(condition: Any, timeout_s: float, message: str) -> None:
    """Poll ``condition()`` until true, or fail with ``message`` after ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():  # noqa: ASYNC110 - polls state another task owns
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(message) from None
