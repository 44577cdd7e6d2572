"""The network user id cookie, SP-Anonymous, and the CORS answers browsers need for both."""

from __future__ import annotations

import uuid

import pytest
from tracking_common.protocol import ANONYMOUS_NETWORK_USER_ID
from tracking_common.record import decode_record

from tests.unit.api_service.api_support import Api, MakeApi, tracker_page_view

TP2 = "/com.snowplowanalytics.snowplow/tp2"


def _recorded(api: Api) -> list[dict[str, str]]:
    return [decode_record(message.value).payload for message in api.publisher.on("events")]


async def test_a_new_browser_gets_a_cookie_and_its_id_is_the_tnuid(api: Api) -> None:
    answer = await api.tp2([tracker_page_view(), tracker_page_view()])

    assert answer.status_code == 200
    network_user_id = answer.cookies["sp"]
    assert str(uuid.UUID(network_user_id)) == network_user_id
    assert answer.headers["set-cookie"] == (
        f"sp={network_user_id}; Max-Age=31536000; Path=/; HttpOnly; SameSite=None; Secure"
    )
    assert [payload["tnuid"] for payload in _recorded(api)] == [network_user_id] * 2


async def test_a_known_browser_keeps_its_id_and_the_cookie_is_renewed(api: Api) -> None:
    known = "0f8fad5b-d9cb-469f-a165-70867728950e"

    answer = await api.client.get(
        "/i", params=tracker_page_view(), headers={"cookie": f"sp={known}"}
    )

    assert answer.status_code == 200
    assert answer.cookies["sp"] == known
    assert _recorded(api)[0]["tnuid"] == known


async def test_an_upper_case_uuid_is_kept_in_its_canonical_form(api: Api) -> None:
    answer = await api.tp2(
        [tracker_page_view()], headers={"cookie": "sp=0F8FAD5B-D9CB-469F-A165-70867728950E"}
    )

    assert answer.cookies["sp"] == "0f8fad5b-d9cb-469f-a165-70867728950e"


async def test_a_cookie_that_is_no_uuid_is_replaced(api: Api) -> None:
    answer = await api.tp2([tracker_page_view()], headers={"cookie": "sp=../../etc"})

    assert answer.cookies["sp"] != "../../etc"
    assert _recorded(api)[0]["tnuid"] == answer.cookies["sp"]


async def test_a_tracker_sent_tnuid_wins(api: Api) -> None:
    answer = await api.tp2([tracker_page_view(tnuid="from-the-tracker")])

    assert "sp" in answer.cookies
    assert _recorded(api)[0]["tnuid"] == "from-the-tracker"


async def test_an_empty_cookie_name_turns_the_cookie_off(make_api: MakeApi) -> None:
    api = make_api(api_nuid_cookie_name="")

    answer = await api.tp2([tracker_page_view()], headers={"cookie": "sp=whatever"})

    assert "set-cookie" not in answer.headers
    assert "tnuid" not in _recorded(api)[0]


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("t.shop.example", "; Domain=shop.example"),
        ("shop.example", "; Domain=shop.example"),
        ("collector.blog.example", "; Domain=blog.example"),
        ("notshop.example", ""),  # a suffix, not a parent domain
        ("api.test", ""),
        ("[::1]", ""),
    ],
)
async def test_the_cookie_domain_is_the_first_the_host_is_under(
    make_api: MakeApi, host: str, domain: str
) -> None:
    api = make_api(
        api_nuid_cookie_domains="shop.example, .blog.example",
        api_nuid_cookie_name="nuid",
        api_nuid_cookie_max_age_days=30,
        api_nuid_cookie_secure=False,
    )

    answer = await api.client.get(f"http://{host}:8080/i", params=tracker_page_view())

    value = answer.cookies["nuid"]
    assert answer.headers["set-cookie"] == (
        f"nuid={value}{domain}; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax"
    )


async def test_no_cookie_on_the_v1_api(api: Api) -> None:
    answer = await api.v1({"event_type": "page_view", "page": {"url": "https://shop.example/"}})

    assert answer.status_code == 200
    assert "set-cookie" not in answer.headers


async def test_sp_anonymous_records_no_ip_and_reads_or_sets_no_cookie(make_api: MakeApi) -> None:
    api = make_api(api_trust_forwarded_for=True)
    headers = {
        "sp-anonymous": "*",
        "cookie": "sp=0f8fad5b-d9cb-469f-a165-70867728950e",
        "x-forwarded-for": "203.0.113.9",
        "user-agent": "browser/1.0",
    }

    posted = await api.tp2([tracker_page_view(ip="198.51.100.1", tnuid="t-1")], headers=headers)
    pixel = await api.client.get("/i", params=tracker_page_view(), headers=headers)

    assert (posted.status_code, pixel.status_code) == (200, 200)
    assert "set-cookie" not in posted.headers
    assert "set-cookie" not in pixel.headers
    for payload in _recorded(api):
        assert "ip" not in payload
        assert payload["tnuid"] == ANONYMOUS_NETWORK_USER_ID
        assert payload["ua"] == "browser/1.0"


@pytest.mark.parametrize("path", [TP2, "/i"])
async def test_the_preflight_allows_sp_anonymous_with_credentials_and_is_cached(
    api: Api, path: str
) -> None:
    answer = await api.client.options(
        path,
        headers={
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, sp-anonymous",
        },
    )

    assert answer.status_code == 204
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert allowed == {"content-type", "authorization", "x-api-key", "sp-anonymous"}
    assert answer.headers["access-control-allow-origin"] == "https://shop.example"
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert int(answer.headers["access-control-max-age"]) > 0


async def test_an_allowed_origin_is_echoed_never_a_star(api: Api) -> None:
    answer = await api.tp2([tracker_page_view()], headers={"origin": "https://shop.example"})

    assert answer.headers["access-control-allow-origin"] == "https://shop.example"
    assert answer.headers["access-control-allow-credentials"] == "true"
