"""What reaches Kafka keeps the contract: bad events match their schema, trace context travels,
non-object items are rejected one by one, a 503 reports nothing accepted, keys are never logged."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import orjson
import pytest
from api_service.settings import MAX_EVENT_BYTES_CEILING
from pydantic import ValidationError
from tracking_common.iglu import BUNDLED_SCHEMA_DIR, IgluRepository, SchemaKey
from tracking_common.observability import JsonLogFormatter, configure_telemetry
from tracking_common.record import BAD_EVENT_SCHEMA, decode_record

from tests.unit.api_service.api_support import (
    KEY,
    OTHER_KEY,
    Api,
    MakeApi,
    make_settings,
    page_view,
    tracker_page_view,
)

TRACEPARENT = re.compile(rb"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
BAD_EVENT = SchemaKey.parse(BAD_EVENT_SCHEMA)


def _check_bad_events(api: Api) -> list[dict[str, Any]]:
    """Every bad event published, each validated against the bad_event schema file."""
    repository = IgluRepository(BUNDLED_SCHEMA_DIR)
    values = api.publisher.values("events_bad")
    for value in values:
        repository.validate(BAD_EVENT, value)
    return values


async def test_bad_events_match_the_bad_event_schema(api: Api) -> None:
    await api.v1({"events": [page_view(), {"event_type": "struct"}, "not an event"]})
    await api.client.post("/v1/events", content=b"{oops", headers={"x-api-key": KEY})
    await api.tp2([{"e": "pv"}])
    await api.client.get("/i", params={"e": "nope"})

    values = _check_bad_events(api)

    assert [value["data"]["source"] for value in values] == ["v1", "v1", "v1", "tp2", "pixel"]
    assert [value["data"]["index"] for value in values] == [1, 2, None, 0, 0]
    assert all(value["data"]["errors"] for value in values)
    assert all(value["data"]["request_id"] for value in values)


async def test_non_object_items_are_rejected_one_by_one(api: Api) -> None:
    answer = await api.v1({"events": [1, page_view(), "x", None, [page_view()]]})

    assert answer.status_code == 207
    body = answer.json()
    assert body["accepted"] == 1
    assert [rejected["index"] for rejected in body["errors"]] == [0, 2, 3, 4]
    assert {rejected["errors"][0]["code"] for rejected in body["errors"]} == {"invalid_type"}
    raws = [value["data"]["raw"] for value in _check_bad_events(api)]
    assert [orjson.loads(raw) for raw in raws] == [1, "x", None, [page_view()]]


async def test_a_rejected_event_keeps_its_raw_input_and_every_reason(api: Api) -> None:
    event_id = str(uuid.uuid4())
    bad = {"event_type": "struct", "event_id": event_id, "category": "", "value": "many"}

    await api.v1({"events": [page_view(), bad]})

    [value] = _check_bad_events(api)
    assert orjson.loads(value["data"]["raw"]) == bad
    assert value["data"]["raw_truncated"] is False
    codes = {(error["path"], error["code"]) for error in value["data"]["errors"]}
    assert {("/category", "string_too_short"), ("/action", "missing")} <= codes
    assert "/value" in {path for path, _ in codes}


async def test_records_carry_the_trace_context_of_the_request_span(api: Api) -> None:
    configure_telemetry("api-service-unit-tests")  # a recording tracer: spans get real ids

    await api.v1({"events": [page_view(), page_view()]})
    await api.tp2([tracker_page_view()])

    messages = api.publisher.on("events")
    parents = [dict(message.headers)["traceparent"] for message in messages]
    assert all(TRACEPARENT.match(parent) for parent in parents)
    trace_ids = [parent.split(b"-")[1] for parent in parents]
    assert trace_ids[0] == trace_ids[1] != trace_ids[2]  # one span per request
    assert all(dict(message.headers)["content-type"] == b"application/json" for message in messages)


async def test_a_callers_trace_context_is_continued(api: Api) -> None:
    configure_telemetry("api-service-unit-tests")
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"}

    answer = await api.v1(page_view(), headers=headers)

    assert answer.status_code == 200
    [message] = api.publisher.on("events")
    parent = dict(message.headers)["traceparent"].decode()
    assert parent.split("-")[1] == caller_trace
    assert parent.split("-")[2] != "00f067aa0ba902b7"  # the API's own span, a child


@pytest.mark.parametrize("traceparent", ["garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01", ""])
async def test_a_malformed_trace_context_starts_a_new_trace(api: Api, traceparent: str) -> None:
    configure_telemetry("api-service-unit-tests")

    answer = await api.v1(page_view(), headers={"traceparent": traceparent})

    assert answer.status_code == 200
    [message] = api.publisher.on("events")
    assert TRACEPARENT.match(dict(message.headers)["traceparent"])
    assert b"-" + b"0" * 32 + b"-" not in dict(message.headers)["traceparent"]


async def test_a_503_reports_nothing_as_accepted(api: Api) -> None:
    api.publisher.fail_with = "timeout"

    answer = await api.v1({"events": [page_view(), page_view()]})

    assert answer.status_code == 503
    assert answer.json() == {
        "error": {
            "code": "kafka_unavailable",
            "message": "the events could not be stored; retry later",
        }
    }
    assert api.publisher.messages == []


async def test_the_partition_key_follows_the_user_and_is_never_empty(api: Api) -> None:
    events = [
        page_view(app_id="shop", subject={"user_id": "u1", "domain_user_id": "d1"}),
        page_view(app_id="shop", subject={"domain_user_id": "d1", "session_id": "s1"}),
        page_view(subject={"session_id": "s1"}),
        page_view(app_id="shop"),
    ]

    answer = await api.v1({"events": events})

    keys = [message.key for message in api.publisher.on("events")]
    ids = answer.json()["event_ids"]
    assert keys == [b"shop:u1", b"shop:d1", b":s1", ids[3].encode()]
    assert [decode_record(m.value).event_id for m in api.publisher.on("events")] == ids


async def test_api_keys_never_reach_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-key-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)

    await api.client.post("/v1/events", json=page_view(), headers={"x-api-key": wrong})
    await api.client.post(
        "/v1/events", json=page_view(), headers={"authorization": f"Bearer {wrong}"}
    )
    await api.v1(page_view())
    await api.v1(
        {"events": [page_view(), {"event_type": "nope"}]}, headers={"x-api-key": OTHER_KEY}
    )
    api.publisher.fail_with = "unavailable"
    await api.v1(page_view())

    assert caplog.records  # refusals, rejections and Kafka failures are logged
    formatter = JsonLogFormatter(service="api-service")
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    for secret in (KEY, OTHER_KEY, wrong):
        assert secret not in logged


@pytest.mark.parametrize("shape", ["event", "entity"])
async def test_the_largest_event_allowed_still_makes_a_valid_record(
    make_api: MakeApi, shape: str
) -> None:
    api = make_api(api_max_event_bytes=MAX_EVENT_BYTES_CEILING, api_allow_unknown_schemas=True)
    data = {"blob": ""}
    blob = {"schema": "iglu:com.acme/blob/jsonschema/1-0-0", "data": data}
    event: dict[str, Any] = (
        {"event_type": "self_describing", "event": blob}
        if shape == "event"
        else page_view(entities=[blob])
    )
    event_bytes = len(orjson.dumps(event))
    data["blob"] = "a" * (MAX_EVENT_BYTES_CEILING - event_bytes)
    assert len(orjson.dumps(event)) == MAX_EVENT_BYTES_CEILING

    answer = await api.v1(event)

    assert answer.status_code == 200
    [message] = api.publisher.on("events")
    decode_record(message.value)  # within the record contract: the forwarder will take it


def test_events_past_the_record_contract_cannot_be_allowed() -> None:
    with pytest.raises(ValidationError, match="api_max_event_bytes"):
        make_settings(api_max_event_bytes=MAX_EVENT_BYTES_CEILING + 1)
