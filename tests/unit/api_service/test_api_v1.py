"""POST /v1/events: what is accepted, what is rejected and why, and what reaches the publisher."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import AsyncIterator

import orjson
from tracking_common.record import EVENT_RECORD_SCHEMA, decode_record, partition_key

from tests.unit.api_service.api_support import (
    AUTH,
    BUTTON_CLICK,
    Api,
    MakeApi,
    button_click,
    page_view,
)

UNKNOWN = "iglu:com.acme/nothing/jsonschema/1-0-0"


async def test_a_single_event_is_published_and_answered_200(api: Api) -> None:
    event_id = str(uuid.uuid4())
    answer = await api.v1(page_view(event_id=event_id, app_id="shop", subject={"user_id": "u1"}))

    assert answer.status_code == 200
    assert answer.json() == {"accepted": 1, "rejected": 0, "event_ids": [event_id]}
    [message] = api.publisher.on("events")
    record = decode_record(message.value)
    assert record.event_id == event_id
    assert record.source == "v1"
    assert record.payload["e"] == "pv"
    assert record.payload["url"] == "https://shop.example/"
    assert message.key == b"shop:u1" == partition_key(record.payload)
    headers = dict(message.headers)
    assert headers["record-schema"] == EVENT_RECORD_SCHEMA.encode()
    assert headers["event-id"] == event_id.encode()


async def test_an_event_without_an_id_gets_one(api: Api) -> None:
    answer = await api.v1(page_view())

    [event_id] = answer.json()["event_ids"]
    assert uuid.UUID(event_id)
    [message] = api.publisher.on("events")
    assert message.key == event_id.encode()  # no user: keyed by the event id, never empty


async def test_a_batch_is_published_in_order(api: Api) -> None:
    ids = [str(uuid.uuid4()) for _ in range(5)]
    answer = await api.v1({"events": [page_view(event_id=event_id) for event_id in ids]})

    assert answer.status_code == 200
    assert answer.json()["event_ids"] == ids
    assert [decode_record(m.value).event_id for m in api.publisher.on("events")] == ids
    assert api.publisher.calls == 1  # one request, one publish: acknowledged together


async def test_a_partial_batch_is_207_and_lists_every_error_of_each_rejected_event(
    api: Api,
) -> None:
    good = page_view()
    bad = {"event_type": "struct", "category": ""}
    answer = await api.v1({"events": [good, bad, page_view()]})

    assert answer.status_code == 207
    body = answer.json()
    assert body["accepted"] == 2
    assert body["rejected"] == 1
    [rejected] = body["errors"]
    assert rejected["index"] == 1
    assert {(e["path"], e["code"]) for e in rejected["errors"]} == {
        ("/category", "string_too_short"),
        ("/action", "missing"),
    }
    assert len(api.publisher.on("events")) == 2
    [bad_event] = api.publisher.values("events_bad")
    assert bad_event["data"]["index"] == 1
    assert bad_event["data"]["source"] == "v1"
    assert orjson.loads(bad_event["data"]["raw"]) == bad
    assert {e["code"] for e in bad_event["data"]["errors"]} == {"string_too_short", "missing"}


async def test_a_batch_with_nothing_valid_is_400_and_kept_on_the_bad_topic(api: Api) -> None:
    answer = await api.v1({"events": [{"event_type": "page_view"}, {"event_type": "nope"}]})

    assert answer.status_code == 400
    body = answer.json()
    assert body["accepted"] == 0
    assert [rejected["index"] for rejected in body["errors"]] == [0, 1]
    assert api.publisher.on("events") == []
    assert len(api.publisher.on("events_bad")) == 2


async def test_wrong_types_are_named_by_path(api: Api) -> None:
    answer = await api.v1(
        page_view(subject={"session_index": "many"}, entities="none", created_at=12.5e20)
    )

    assert answer.status_code == 400
    paths = {error["path"] for error in answer.json()["errors"][0]["errors"]}
    assert {"/subject/session_index", "/entities"} <= paths


async def test_duplicate_event_ids_in_one_request_are_rejected(api: Api) -> None:
    event_id = str(uuid.uuid4())
    answer = await api.v1({"events": [page_view(event_id=event_id)] * 2})

    assert answer.status_code == 207
    [rejected] = answer.json()["errors"]
    assert rejected["index"] == 1
    assert rejected["event_id"] == event_id
    assert rejected["errors"][0]["code"] == "duplicate_event_id"
    assert len(api.publisher.on("events")) == 1


async def test_self_describing_data_is_checked_against_its_schema(api: Api) -> None:
    answer = await api.v1({"events": [button_click("signup"), button_click("far-too-long")]})

    assert answer.status_code == 207
    [rejected] = answer.json()["errors"]
    assert rejected["index"] == 1
    [error] = rejected["errors"]
    assert error["code"] == "schema_violation"
    assert error["path"].startswith("/event/data")


async def test_entities_are_checked_against_their_schemas(api: Api) -> None:
    entity = {"schema": BUTTON_CLICK, "data": {"button_id": 7}}
    answer = await api.v1(
        page_view(entities=[{"schema": BUTTON_CLICK, "data": {"button_id": "a"}}, entity])
    )

    assert answer.status_code == 400
    [error] = answer.json()["errors"][0]["errors"]
    assert error["path"].startswith("/entities/1/data")


async def test_an_unknown_schema_is_rejected(api: Api) -> None:
    unknown = {
        "event_type": "self_describing",
        "event": {"schema": UNKNOWN, "data": {}},
    }
    answer = await api.v1(unknown)

    assert answer.status_code == 400
    [error] = answer.json()["errors"][0]["errors"]
    assert error == {
        "path": "/event/schema",
        "code": "unknown_schema",
        "message": f"no schema {UNKNOWN}",
    }


async def test_unknown_schemas_pass_when_allowed(make_api: MakeApi) -> None:
    api = make_api(api_allow_unknown_schemas=True)
    unknown = {"event_type": "self_describing", "event": {"schema": UNKNOWN, "data": {"a": 1}}}

    assert (await api.v1(unknown)).status_code == 200


async def test_an_oversized_event_is_rejected_alone(make_api: MakeApi) -> None:
    api = make_api(api_max_event_bytes=1024)
    answer = await api.v1(
        {"events": [page_view(), page_view(page={"url": "https://x.example/" + "a" * 2000})]}
    )

    assert answer.status_code == 207
    [rejected] = answer.json()["errors"]
    assert rejected["index"] == 1
    assert rejected["errors"][0]["code"] == "event_too_large"


async def test_too_many_events_is_413_and_nothing_is_published(make_api: MakeApi) -> None:
    api = make_api(api_max_events_per_request=3)
    answer = await api.v1({"events": [page_view() for _ in range(4)]})

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "too_many_events"
    assert api.publisher.messages == []


async def test_an_empty_batch_is_400(api: Api) -> None:
    answer = await api.v1({"events": []})

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "no_events"


async def test_a_body_over_the_limit_is_413_before_parsing(make_api: MakeApi) -> None:
    api = make_api(api_max_body_bytes=1024)
    body = b"{" + b" " * 2000  # not even JSON: the size is checked first

    answer = await api.client.post("/v1/events", content=body, headers=AUTH)

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert api.publisher.messages == []


async def test_a_streamed_body_over_the_limit_is_413(make_api: MakeApi) -> None:
    api = make_api(api_max_body_bytes=1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 512

    answer = await api.client.post("/v1/events", content=chunks(), headers=AUTH)

    assert answer.status_code == 413


async def test_gzip_bodies_are_inflated(api: Api) -> None:
    body = gzip.compress(orjson.dumps({"events": [page_view(), page_view()]}))
    headers = {**AUTH, "content-encoding": "gzip", "content-type": "application/json"}

    answer = await api.client.post("/v1/events", content=body, headers=headers)

    assert answer.status_code == 200
    assert answer.json()["accepted"] == 2


async def test_a_gzip_bomb_is_413(make_api: MakeApi) -> None:
    api = make_api(api_max_inflated_bytes=64 * 1024)
    bomb = gzip.compress(b"[" * 10_000_000)
    assert len(bomb) < api.settings.api_max_body_bytes

    answer = await api.client.post(
        "/v1/events", content=bomb, headers={**AUTH, "content-encoding": "gzip"}
    )

    assert answer.status_code == 413
    assert "inflates" in answer.json()["error"]["message"]


async def test_broken_gzip_is_400_and_other_encodings_415(api: Api) -> None:
    broken = await api.client.post(
        "/v1/events", content=b"not gzip", headers={**AUTH, "content-encoding": "gzip"}
    )
    brotli = await api.client.post(
        "/v1/events", content=b"{}", headers={**AUTH, "content-encoding": "br"}
    )

    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_gzip"
    assert brotli.status_code == 415


async def test_malformed_json_is_400_and_kept_on_the_bad_topic(api: Api) -> None:
    answer = await api.client.post("/v1/events", content=b'{"event_type": ', headers=AUTH)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_json"
    [bad] = api.publisher.values("events_bad")
    assert bad["data"]["raw"] == '{"event_type": '
    assert bad["data"]["index"] is None
    assert bad["data"]["errors"][0]["code"] == "invalid_json"


async def test_json_nested_too_deep_is_400(make_api: MakeApi) -> None:
    api = make_api(api_max_json_depth=8)
    deep: object = "leaf"
    for _ in range(20):
        deep = {"nested": deep}

    answer = await api.v1(page_view(event={"schema": "x", "data": deep}))

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "too_deep"


async def test_a_body_that_is_not_an_event_or_a_batch_is_400(api: Api) -> None:
    bodies: list[object] = [
        [page_view()],
        "text",
        {"events": [page_view()], "extra": 1},
        {"events": {}},
    ]
    for body in bodies:
        answer = await api.v1(body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["code"] in {"invalid_body", "invalid_batch"}
    assert api.publisher.on("events") == []


async def test_an_empty_body_is_400(api: Api) -> None:
    answer = await api.client.post("/v1/events", content=b"", headers=AUTH)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "empty_body"


async def test_a_schema_key_too_long_for_a_file_name_is_an_unknown_schema(api: Api) -> None:
    too_long = f"iglu:{'a' * 300}/ctx/jsonschema/1-0-0"
    event = page_view(entities=[{"schema": too_long, "data": {}}])

    answer = await api.v1(event)

    assert answer.status_code == 400
    [error] = answer.json()["errors"][0]["errors"]
    assert error["code"] == "unknown_schema"


async def test_an_unknown_event_type_lists_the_plain_values(api: Api) -> None:
    answer = await api.v1({"event_type": "transaction"})

    assert answer.status_code == 400
    [error] = answer.json()["errors"][0]["errors"]
    assert error["path"] == "/event_type"
    assert error["message"] == (
        'event_type "transaction" is not supported; '
        "expected one of: page_view, page_ping, struct, self_describing"
    )
    assert "EventType" not in answer.text
