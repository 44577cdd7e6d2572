"""Who the client is, over a real socket: uvicorn as ``main`` configures it, the app in memory.

The test client connects from 127.0.0.1, the address uvicorn trusts X-Forwarded-For from by
default; the app must decide alone, by API_TRUST_FORWARDED_FOR and API_TRUSTED_PROXIES.
"""

from __future__ import annotations

from typing import Any

import httpx
from tracking_common.record import decode_record

from tests.integration.api_service.served import PAYLOAD_DATA, TP2, Served
from tests.unit.api_service.api_support import tracker_page_view


async def _recorded_ip(served: Served, forwarded_for: str, **overrides: Any) -> str:
    async with served(**overrides) as (url, publisher), httpx.AsyncClient() as client:
        answer = await client.post(
            url + TP2,
            json={"schema": PAYLOAD_DATA, "data": [tracker_page_view()]},
            headers={"x-forwarded-for": forwarded_for},
        )
    assert answer.status_code == 200, answer.text
    [message] = publisher.on("events")
    return decode_record(message.value).payload["ip"]


async def test_forwarded_for_is_ignored_when_not_trusted(served: Served) -> None:
    assert await _recorded_ip(served, "203.0.113.9") == "127.0.0.1"


async def test_forwarded_for_of_a_trusted_peer_gives_the_entry_hops_from_the_right(
    served: Served,
) -> None:
    spoofed_then_real = "198.51.100.66, 203.0.113.9"
    trusting = {"api_trust_forwarded_for": True, "api_trusted_proxies": "127.0.0.0/8"}

    one_hop = await _recorded_ip(served, spoofed_then_real, **trusting)
    two_hops = await _recorded_ip(served, spoofed_then_real, api_trusted_proxy_hops=2, **trusting)

    assert (one_hop, two_hops) == ("203.0.113.9", "198.51.100.66")


async def test_forwarded_for_from_a_peer_that_is_no_trusted_proxy_is_ignored(
    served: Served,
) -> None:
    ip = await _recorded_ip(
        served, "203.0.113.9", api_trust_forwarded_for=True, api_trusted_proxies="10.0.0.0/8"
    )

    assert ip == "127.0.0.1"


async def test_the_per_ip_rate_limit_cannot_be_dodged_with_forwarded_for(served: Served) -> None:
    body = {"schema": PAYLOAD_DATA, "data": [tracker_page_view()]}
    async with (
        served(api_rate_limit_per_s=0.01, api_rate_limit_burst=1) as (url, _),
        httpx.AsyncClient() as client,
    ):
        first = await client.post(url + TP2, json=body, headers={"x-forwarded-for": "192.0.2.1"})
        second = await client.post(url + TP2, json=body, headers={"x-forwarded-for": "192.0.2.2"})

    assert (first.status_code, second.status_code) == (200, 429)
