"""Tracker-protocol payloads: round trips, schema conformance and error reporting."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from tracking_common.errors import PayloadError
from tracking_common.events import MAX_ENTITIES, TrackedEvent, event_adapter
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, bundled_repository
from tracking_common.protocol import (
    CONTEXTS_URI,
    UNSTRUCT_EVENT_URI,
    decode_base64_json,
    from_payload,
    issues_from_validation_error,
    payload_path,
    to_payload,
)

ENTITY = {"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"tier": "gold", "n": 3}}
FULL_SUBJECT = {
    "user_id": "u-1",
    "domain_user_id": "d-1",
    "network_user_id": "n-1",
    "session_id": "s-1",
    "session_index": 4,
    "ip_address": "203.0.113.7",
    "useragent": "Mozilla/5.0",
    "language": "en-GB",
    "timezone": "Europe/London",
    "screen_resolution": {"width": 1920, "height": 1080},
    "viewport": {"width": 1280, "height": 720},
    "color_depth": 24,
}
COMMON = {
    "app_id": "shop",
    "platform": "mob",
    "tracker_version": "py-1.0.0",
    "namespace": "ns",
    "created_at": datetime(2024, 5, 1, 12, 0, 0, 123_000, tzinfo=UTC),
    "true_timestamp": datetime(2024, 5, 1, 11, 59, 59, tzinfo=UTC),
    "subject": FULL_SUBJECT,
    "page": {"url": "https://example.com/a?b=c", "title": "Ä title", "referrer": "https://r.io/"},
    "entities": [ENTITY, {"schema": "iglu:com.acme/cart/jsonschema/2-1-0", "data": {}}],
}
EVENTS: dict[str, dict[str, Any]] = {
    "page_view": {"event_type": "page_view", **COMMON},
    "page_ping": {
        "event_type": "page_ping",
        **COMMON,
        "min_x_offset": -5,
        "max_x_offset": 0,
        "min_y_offset": 10,
        "max_y_offset": 2**31 - 1,
    },
    "struct": {
        "event_type": "struct",
        **COMMON,
        "category": "shop",
        "action": "add",
        "label": "sku-1",
        "property": "size",
        "value": 12.75,
    },
    "self_describing": {
        "event_type": "self_describing",
        **COMMON,
        "event": {
            "schema": "iglu:com.acme/click/jsonschema/1-0-0",
            "data": {"id": "signup", "nested": {"list": [1, 2.5, None, "ü"]}},
        },
    },
    "minimal_page_view": {"event_type": "page_view", "page": {"url": "https://e.io"}},
    "minimal_struct": {"event_type": "struct", "category": "c", "action": "a"},
}


def _event(name: str) -> TrackedEvent:
    return event_adapter().validate_python(EVENTS[name])


def _issues(payload: dict[str, str]) -> list[tuple[str, str]]:
    with pytest.raises(PayloadError) as caught:
        from_payload(payload)
    return [(issue.path, issue.code) for issue in caught.value.issues]


@pytest.mark.parametrize("base64_encode", [False, True], ids=["plain", "base64"])
@pytest.mark.parametrize("name", sorted(EVENTS))
def test_to_payload_then_from_payload_gives_the_same_event(name: str, base64_encode: bool) -> None:
    event = _event(name)

    payload = to_payload(event, base64_encode=base64_encode)

    assert from_payload(payload) == event


@pytest.mark.parametrize("base64_encode", [False, True], ids=["plain", "base64"])
@pytest.mark.parametrize("name", sorted(EVENTS))
def test_every_payload_validates_against_payload_data(name: str, base64_encode: bool) -> None:
    payload = to_payload(_event(name), base64_encode=base64_encode)

    bundled_repository().validate(PAYLOAD_DATA_SCHEMA, [payload])
    assert all(type(value) is str for value in payload.values())
    assert "stm" not in payload


def test_the_payload_names_the_tracker_protocol_fields() -> None:
    event = _event("struct")

    payload = to_payload(event)

    assert payload["e"] == "se"
    assert payload["eid"] == str(event.event_id)
    assert payload["aid"] == "shop"
    assert payload["p"] == "mob"
    assert payload["tv"] == "py-1.0.0"
    assert payload["tna"] == "ns"
    assert payload["dtm"] == "1714564800123"
    assert payload["ttm"] == "1714564799000"
    assert payload["url"] == "https://example.com/a?b=c"
    assert payload["page"] == "Ä title"
    assert payload["refr"] == "https://r.io/"
    assert payload["uid"] == "u-1"
    assert payload["duid"] == "d-1"
    assert payload["tnuid"] == "n-1"
    assert payload["sid"] == "s-1"
    assert payload["vid"] == "4"
    assert payload["ip"] == "203.0.113.7"
    assert payload["ua"] == "Mozilla/5.0"
    assert payload["lang"] == "en-GB"
    assert payload["tz"] == "Europe/London"
    assert payload["res"] == "1920x1080"
    assert payload["vp"] == "1280x720"
    assert payload["cd"] == "24"
    assert (payload["se_ca"], payload["se_ac"], payload["se_la"]) == ("shop", "add", "sku-1")
    assert (payload["se_pr"], payload["se_va"]) == ("size", "12.75")
    assert orjson.loads(payload["co"]) == {
        "schema": CONTEXTS_URI,
        "data": [ENTITY, {"schema": "iglu:com.acme/cart/jsonschema/2-1-0", "data": {}}],
    }


def test_page_ping_offsets_and_whole_struct_values() -> None:
    ping = to_payload(_event("page_ping"))
    struct = to_payload(
        event_adapter().validate_python(
            {"event_type": "struct", "category": "c", "action": "a", "value": 3.0}
        )
    )

    assert (ping["e"], ping["pp_mix"], ping["pp_max"]) == ("pp", "-5", "0")
    assert (ping["pp_miy"], ping["pp_may"]) == ("10", str(2**31 - 1))
    assert struct["se_va"] == "3"


def test_self_describing_is_wrapped_in_unstruct_event_plain_or_base64() -> None:
    event = _event("self_describing")
    expected = {"schema": UNSTRUCT_EVENT_URI, "data": EVENTS["self_describing"]["event"]}

    plain = to_payload(event)
    encoded = to_payload(event, base64_encode=True)

    assert plain["e"] == "ue"
    assert orjson.loads(plain["ue_pr"]) == expected
    assert "ue_px" not in plain
    assert "co" in plain
    assert decode_base64_json(encoded["ue_px"]) == expected
    assert "ue_pr" not in encoded
    assert "co" not in encoded
    assert decode_base64_json(encoded["cx"])["schema"] == CONTEXTS_URI


def test_decode_base64_json_takes_standard_or_url_safe_alphabets_with_or_without_padding() -> None:
    raw = orjson.dumps({"k": "~~~???>>>"})
    for encoded in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert decode_base64_json(encoded) == {"k": "~~~???>>>"}
    with pytest.raises(ValueError, match="base64"):
        decode_base64_json("***")
    with pytest.raises(orjson.JSONDecodeError):
        decode_base64_json(base64.b64encode(b"{not json").decode())


def test_from_payload_accepts_contexts_1_0_1_and_a_tracker_sent_stm() -> None:
    contexts = {"schema": CONTEXTS_URI[:-1] + "1", "data": [ENTITY]}
    payload = {
        "e": "pv",
        "url": "https://e.io",
        "co": orjson.dumps(contexts).decode(),
        "stm": "1714564800000",
    }

    event = from_payload(payload)

    assert [entity.as_json() for entity in event.entities] == [ENTITY]
    assert event.sent_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_from_payload_fills_defaults_and_a_fresh_event_id() -> None:
    first = from_payload({"e": "se", "se_ca": "c", "se_ac": "a"})
    second = from_payload({"e": "se", "se_ca": "c", "se_ac": "a", "eid": ""})

    assert isinstance(first.event_id, uuid.UUID)
    assert first.event_id != second.event_id
    assert first.platform.value == "web"
    assert first.tracker_version == "tp-api-1"


def test_an_unknown_or_missing_event_type_stops_at_once() -> None:
    assert _issues({"e": "tr", "dtm": "x"}) == [("/e", "unsupported_event_type")]
    assert _issues({}) == [("/e", "unsupported_event_type")]


def test_from_payload_collects_every_protocol_issue_with_its_path() -> None:
    issues = _issues(
        {
            "e": "ue",
            "dtm": "yesterday",
            "stm": "-1",
            "ttm": "99999999999999999",
            "vid": "first",
            "cd": "1.5",
            "res": "wide",
            "vp": "800x",
            "cx": "%%%",
        }
    )

    assert issues == [
        ("/dtm", "invalid_timestamp"),
        ("/stm", "invalid_timestamp"),
        ("/ttm", "invalid_timestamp"),
        ("/vid", "invalid_integer"),
        ("/cd", "invalid_integer"),
        ("/res", "invalid_resolution"),
        ("/vp", "invalid_resolution"),
        ("/ue_pr", "missing_field"),
        ("/cx", "invalid_base64_json"),
    ]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"e": "pp", "url": "u", "pp_mix": "a"}, [("/pp_mix", "invalid_integer")]),
        ({"e": "se", "se_ca": "c", "se_ac": "a", "se_va": "ten"}, [("/se_va", "invalid_number")]),
        ({"e": "se", "se_ca": "c", "se_ac": "a", "se_va": "inf"}, [("/se_va", "invalid_number")]),
        ({"e": "ue", "ue_pr": "{"}, [("/ue_pr", "invalid_json")]),
        ({"e": "ue", "ue_px": "e30"}, [("/ue_px", "invalid_wrapper")]),
        (
            {"e": "ue", "ue_pr": '{"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": {}}'},
            [("/ue_pr", "invalid_wrapper")],
        ),
        ({"e": "pv", "url": "u", "co": "[]"}, [("/co", "invalid_wrapper")]),
        (
            {"e": "pv", "url": "u", "co": orjson.dumps({"schema": CONTEXTS_URI, "data": {}})},
            [("/co", "invalid_wrapper")],
        ),
        (
            {
                "e": "pv",
                "url": "u",
                "cx": base64.b64encode(orjson.dumps({"schema": CONTEXTS_URI, "data": {}})),
            },
            [("/cx", "invalid_wrapper")],
        ),
    ],
)
def test_malformed_fields_are_reported_at_their_key(
    payload: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    text_payload = {k: v.decode() if isinstance(v, bytes) else v for k, v in payload.items()}

    assert _issues(text_payload) == expected


def test_model_issues_name_the_tracker_keys_not_the_model_fields() -> None:
    contexts = {"schema": CONTEXTS_URI, "data": [ENTITY] * (MAX_ENTITIES + 1)}

    issues = _issues(
        {
            "e": "pv",
            "aid": "a" * 256,
            "p": "moon",
            "eid": "nope",
            "co": orjson.dumps(contexts).decode(),
        }
    )

    assert ("/url", "missing") in issues
    assert ("/aid", "string_too_long") in issues
    assert ("/p", "enum") in issues
    assert ("/eid", "uuid_parsing") in issues
    assert ("/co/data", "too_long") in issues


def test_a_struct_event_without_category_and_action_names_both() -> None:
    assert _issues({"e": "se"}) == [("/se_ca", "missing"), ("/se_ac", "missing")]


def test_payload_error_summarises_and_lists_distinct_codes() -> None:
    with pytest.raises(PayloadError) as caught:
        from_payload({"e": "pv", "dtm": "x", "ttm": "y", "vid": "z"})

    error = caught.value
    assert error.codes == ("invalid_timestamp", "invalid_integer")
    assert "/dtm" in str(error)
    assert error.issues[0].as_dict() == {
        "path": "/dtm",
        "code": "invalid_timestamp",
        "message": 'dtm must be an integer, got "x"',
    }


@pytest.mark.parametrize(
    ("path", "payload", "expected"),
    [
        ("/app_id", {}, "/aid"),
        ("/subject/user_id", {}, "/uid"),
        ("/subject/screen_resolution", {}, "/res"),
        ("/page/referrer", {}, "/refr"),
        ("/page", {}, "/url"),
        ("/min_x_offset", {}, "/pp_mix"),
        ("/value", {}, "/se_va"),
        ("/entities", {"co": "{}"}, "/co/data"),
        ("/entities/2/data/id", {"co": "{}"}, "/co/data/2/data/id"),
        ("/entities/0/schema", {"cx": "e30"}, "/cx/data/0/schema"),
        ("/event/data/button_id", {"ue_px": "e30"}, "/ue_px/data/data/button_id"),
        ("/event/data/button_id", {"ue_pr": "{}"}, "/ue_pr/data/data/button_id"),
        ("/values_unknown", {}, "/values_unknown"),
        ("", {}, ""),
    ],
)
def test_payload_paths_translate_model_fields_to_tracker_keys(
    path: str, payload: dict[str, str], expected: str
) -> None:
    assert payload_path(path, payload) == expected


@pytest.mark.parametrize(
    ("document", "said"),
    [({"event_type": "nope"}, 'event_type "nope" is not supported'), ({}, "event_type is missing")],
)
def test_event_type_issues_name_the_plain_values(document: dict[str, Any], said: str) -> None:
    with pytest.raises(ValidationError) as caught:
        event_adapter().validate_python(document)

    [issue] = issues_from_validation_error(caught.value)

    assert issue.path == "/event_type"
    assert (
        issue.message == f"{said}; expected one of: page_view, page_ping, struct, self_describing"
    )
