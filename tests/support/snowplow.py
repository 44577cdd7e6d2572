"""Snowplow's own Python tracker (the ``snowplow-tracker`` package), pointed at our services."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from snowplow_tracker.emitters import Emitter


def snowplow_emitter(
    base_url: str, method: Literal["get", "post"], failures: list[int], *, batch_size: int
) -> Emitter:
    """A synchronous Snowplow Emitter for ``base_url``; each failed send appends its count."""
    address = urlsplit(base_url)
    return Emitter(
        address.hostname or "127.0.0.1",
        protocol="http",
        port=address.port,
        method=method,
        batch_size=batch_size,
        on_failure=lambda sent, _unsent: failures.append(sent),
    )
