"""The tracker-protocol rules for what the server adds: request facts, anonymity, redirects."""

from __future__ import annotations

import orjson
import pytest
from tracking_common.iglu import SchemaKey, bundled_repository
from tracking_common.protocol import (
    ANONYMOUS_NETWORK_USER_ID,
    CONTEXTS_URI,
    UNSTRUCT_EVENT_URI,
    URI_REDIRECT_URI,
    RequestFacts,
    add_request_facts,
    decode_base64_json,
    from_payload,
    redirect_payload,
    to_payload,
)

FACTS = RequestFacts(ip="203.0.113.9", useragent="browser/1.0", network_user_id="n-1")
ENTITY = {"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"id": "u-1"}}
REDIRECT = {"schema": URI_REDIRECT_URI, "data": {"uri": "https://shop.example/"}}


def test_request_facts_fill_only_what_the_tracker_did_not_send() -> None:
    sent = {"e": "pv", "ip": "198.51.100.1"}
    bare = {"e": "pv"}

    add_request_facts(sent, FACTS)
    add_request_facts(bare, FACTS)

    assert sent == {"e": "pv", "ip": "198.51.100.1", "ua": "browser/1.0", "tnuid": "n-1"}
    assert bare == {"e": "pv", "ip": "203.0.113.9", "ua": "browser/1.0", "tnuid": "n-1"}


def test_a_tracker_sent_tnuid_is_kept() -> None:
    payload = {"e": "pv", "tnuid": "mine"}

    add_request_facts(payload, FACTS)

    assert payload["tnuid"] == "mine"


def test_anonymous_requests_keep_no_ip_and_the_all_zero_network_user_id() -> None:
    payload = {"e": "pv", "ip": "198.51.100.1", "tnuid": "mine"}

    add_request_facts(payload, RequestFacts(useragent="browser/1.0", anonymous=True))

    assert payload == {"e": "pv", "tnuid": ANONYMOUS_NETWORK_USER_ID, "ua": "browser/1.0"}


def test_a_redirect_alone_is_a_uri_redirect_event() -> None:
    payload = redirect_payload({"u": "https://shop.example/", "aid": "mail"})

    assert payload == {
        "aid": "mail",
        "tv": "r-tp2",
        "p": "web",
        "e": "ue",
        "ue_pr": orjson.dumps({"schema": UNSTRUCT_EVENT_URI, "data": REDIRECT}).decode(),
    }
    event = from_payload(payload)
    assert to_payload(event)["ue_pr"] == payload["ue_pr"]
    bundled_repository().validate(SchemaKey.parse(URI_REDIRECT_URI), REDIRECT["data"])


def test_a_redirect_with_an_event_joins_its_entities_plain_or_base64() -> None:
    plain = redirect_payload(
        {
            "u": "https://shop.example/",
            "e": "pv",
            "co": orjson.dumps({"schema": CONTEXTS_URI, "data": [ENTITY]}).decode(),
        }
    )
    encoded = to_payload(from_payload({**plain, "url": "https://x.example/"}), base64_encode=True)
    from_cx = redirect_payload({"u": "https://blog.example/", "e": "pv", "cx": encoded["cx"]})

    assert orjson.loads(plain["co"])["data"] == [ENTITY, REDIRECT]
    blog = {"schema": URI_REDIRECT_URI, "data": {"uri": "https://blog.example/"}}
    assert decode_base64_json(from_cx["cx"])["data"] == [ENTITY, REDIRECT, blog]
    assert "co" not in from_cx


@pytest.mark.parametrize("contexts", ["not json", '{"data": 3}', "[1]"])
def test_malformed_contexts_are_left_for_from_payload_to_report(contexts: str) -> None:
    payload = redirect_payload({"u": "https://shop.example/", "e": "pv", "co": contexts})

    assert payload["co"] == contexts


def test_a_redirect_needs_its_target() -> None:
    with pytest.raises(KeyError):
        redirect_payload({"e": "pv"})
