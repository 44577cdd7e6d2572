"""Click redirects: GET /r/tp2?u=... records a uri_redirect event and redirects to listed hosts."""

from __future__ import annotations

import orjson
import pytest
from tracking_common.protocol import CONTEXTS_URI, UNSTRUCT_EVENT_URI, URI_REDIRECT_URI
from tracking_common.record import decode_record

from tests.unit.api_service.api_support import Api, MakeApi

REDIRECTING = {"api_redirect_domains": "shop.example, blog.example"}


@pytest.fixture
def redirecting(make_api: MakeApi) -> Api:
    """The app with redirects to shop.example and blog.example."""
    return make_api(**REDIRECTING)


async def test_redirects_are_off_unless_domains_are_listed(api: Api) -> None:
    answer = await api.client.get("/r/tp2", params={"u": "https://shop.example/"})

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "redirects_disabled"
    assert api.publisher.messages == []


async def test_a_redirect_is_recorded_as_a_uri_redirect_event_then_followed(
    redirecting: Api,
) -> None:
    target = "https://shop.example/pricing?plan=pro&ref=mail"

    answer = await redirecting.client.get(
        "/r/tp2", params={"u": target, "aid": "mail"}, headers={"user-agent": "browser/1.0"}
    )

    assert answer.status_code == 302
    assert answer.headers["location"] == target
    assert answer.headers["cache-control"] == "no-store"
    [message] = redirecting.publisher.on("events")
    record = decode_record(message.value)
    payload = record.payload
    assert (payload["e"], payload["p"], payload["tv"], payload["aid"]) == (
        "ue",
        "web",
        "r-tp2",
        "mail",
    )
    assert orjson.loads(payload["ue_pr"]) == {
        "schema": UNSTRUCT_EVENT_URI,
        "data": {"schema": URI_REDIRECT_URI, "data": {"uri": target}},
    }
    assert payload["tnuid"] == answer.cookies["sp"]
    assert (payload["ip"], payload["ua"]) == ("127.0.0.1", "browser/1.0")
    assert "u" not in payload


async def test_a_redirect_with_an_event_attaches_the_uri_as_an_entity(redirecting: Api) -> None:
    answer = await redirecting.client.get(
        "/r/tp2",
        params={"u": "https://blog.example/", "e": "pv", "url": "https://mail.example/"},
    )

    assert answer.status_code == 302
    payload = decode_record(redirecting.publisher.on("events")[0].value).payload
    assert payload["e"] == "pv"
    assert orjson.loads(payload["co"]) == {
        "schema": CONTEXTS_URI,
        "data": [{"schema": URI_REDIRECT_URI, "data": {"uri": "https://blog.example/"}}],
    }


async def test_a_redirect_with_a_rejected_event_still_redirects_and_keeps_it(
    redirecting: Api,
) -> None:
    answer = await redirecting.client.get(
        "/r/tp2", params={"u": "https://shop.example/", "e": "zz"}
    )

    assert answer.status_code == 302
    assert redirecting.publisher.on("events") == []
    assert len(redirecting.publisher.on("events_bad")) == 1


async def test_mixed_case_schemes_and_hosts_of_a_listed_domain_are_allowed(
    redirecting: Api,
) -> None:
    answer = await redirecting.client.get("/r/tp2", params={"u": "HTTPS://Shop.EXAMPLE:8443/a"})

    assert answer.status_code == 302
    assert answer.headers["location"] == "HTTPS://Shop.EXAMPLE:8443/a"


async def test_a_redirect_without_a_target_is_400(redirecting: Api) -> None:
    for params in ({}, {"u": ""}):
        answer = await redirecting.client.get("/r/tp2", params=params)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "missing_target"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "///evil.example/",
        "https:evil.example",
        "https:/evil.example",
        "https:///evil.example",
        "/\\evil.example",
        "https://evil.example\\@shop.example/",
        "https://shop.example@evil.example/",
        "https://shop.example:443@evil.example/",
        "https://shop.example.evil.example/",
        "https://evilshop.example/",
        "https://shop.example./",
        "javascript:alert(1)",
        "JaVaScRiPt://shop.example/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://shop.example/",
        "https%3A%2F%2Fevil.example",
        "https://evil%2Eexample/",
        "https://shop%2Eexample/",
        "https://evil.example%2F@shop.example/",
        " https://evil.example/",
        "https://evil.example/\r\nset-cookie: x=1",
        "https://shop.example\t.evil.example/",
        "https://sh\u043ep.example/",  # a Cyrillic o
        "https://shop.example:99999/",
        "/pricing",
        "https://" + "a" * 8200 + ".shop.example/",
    ],
)
async def test_no_open_redirect(redirecting: Api, target: str) -> None:
    answer = await redirecting.client.get("/r/tp2", params={"u": target})

    assert answer.status_code == 400, target
    assert answer.json()["error"]["code"] == "redirect_not_allowed"
    assert "location" not in answer.headers
    assert redirecting.publisher.messages == []


async def test_a_doubly_encoded_target_is_not_decoded_again(redirecting: Api) -> None:
    answer = await redirecting.client.get("/r/tp2?u=https%253A%252F%252Fevil.example")

    assert answer.status_code == 400
