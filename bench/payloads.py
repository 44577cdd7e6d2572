"""The benchmark's request bodies: one page view, and a batch of ``BATCH_SIZE`` of them."""

from __future__ import annotations

import uuid
from typing import Any

BATCH_SIZE = 100


def page_view(n: int, *, event_id: str | None = None) -> dict[str, Any]:
    """One page view, as a tracker would post it to ``/v1/events``."""
    event: dict[str, Any] = {
        "event_type": "page_view",
        "app_id": "bench",
        "platform": "web",
        "page": {
            "url": f"https://shop.example.com/products/{n % 997}?ref=bench",
            "title": "Product",
            "referrer": "https://search.example/?q=shoes",
        },
        "subject": {"user_id": f"user-{n % 5000}", "language": "en-GB"},
    }
    if event_id is not None:
        event["event_id"] = event_id
    return event


def batch_events() -> list[dict[str, Any]]:
    """``BATCH_SIZE`` page views with distinct ids (the API refuses duplicates in a request)."""
    return [page_view(n, event_id=str(uuid.uuid4())) for n in range(BATCH_SIZE)]
