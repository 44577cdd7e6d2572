"""What a browser sees over a real socket: the network user id cookie, SP-Anonymous, the CORS
preflight, and click redirects.
"""

from __future__ import annotations

import httpx
from tracking_common.protocol import ANONYMOUS_NETWORK_USER_ID
from tracking_common.record import decode_record

from tests.integration.api_service.served import PAYLOAD_DATA, TP2, Served
from tests.unit.api_service.api_support import tracker_page_view


async def test_the_cookie_is_set_then_sent_back_and_kept(served: Served) -> None:
    body = {"schema": PAYLOAD_DATA, "data": [tracker_page_view()]}
    async with (
        served(api_nuid_cookie_secure=False) as (url, publisher),
        httpx.AsyncClient() as client,  # keeps cookies as a browser does
    ):
        first = await client.post(url + TP2, json=body)
        second = await client.get(url + "/i", params=tracker_page_view())

    network_user_id = first.cookies["sp"]
    assert "HttpOnly" in first.headers["set-cookie"]
    assert second.cookies["sp"] == network_user_id
    recorded = [decode_record(m.value).payload["tnuid"] for m in publisher.on("events")]
    assert recorded == [network_user_id, network_user_id]


async def test_an_anonymous_browser_passes_the_preflight_and_leaves_no_ip(served: Served) -> None:
    origin = {"origin": "https://shop.example"}
    body = {"schema": PAYLOAD_DATA, "data": [tracker_page_view()]}
    async with (
        served(api_trust_forwarded_for=True) as (url, publisher),
        httpx.AsyncClient() as client,
    ):
        preflight = await client.options(
            url + TP2,
            headers={
                **origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,sp-anonymous",
            },
        )
        posted = await client.post(
            url + TP2,
            json=body,
            headers={**origin, "sp-anonymous": "*", "x-forwarded-for": "203.0.113.9"},
        )

    assert preflight.status_code == 204
    assert "SP-Anonymous" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers["access-control-max-age"] == "86400"
    assert posted.status_code == 200
    assert posted.headers["access-control-allow-origin"] == "https://shop.example"
    assert posted.headers["access-control-allow-credentials"] == "true"
    assert "set-cookie" not in posted.headers
    [payload] = [decode_record(m.value).payload for m in publisher.on("events")]
    assert "ip" not in payload
    assert payload["tnuid"] == ANONYMOUS_NETWORK_USER_ID


async def test_a_click_redirect_records_and_redirects_only_to_listed_hosts(
    served: Served,
) -> None:
    async with (
        served(api_redirect_domains="shop.example") as (url, publisher),
        httpx.AsyncClient() as client,
    ):
        allowed = await client.get(url + "/r/tp2", params={"u": "https://shop.example/a?b=c"})
        # Sent as written: the request line carries the backslash and the scheme-relative URL.
        tricked = await client.get(url + "/r/tp2?u=/%5Cevil.example")
        relative = await client.get(url + "/r/tp2?u=//evil.example")

    assert allowed.status_code == 302
    assert allowed.headers["location"] == "https://shop.example/a?b=c"
    assert (tricked.status_code, relative.status_code) == (400, 400)
    assert "location" not in tricked.headers
    [payload] = [decode_record(m.value).payload for m in publisher.on("events")]
    assert payload["e"] == "ue"
    assert "uri_redirect" in payload["ue_pr"]
