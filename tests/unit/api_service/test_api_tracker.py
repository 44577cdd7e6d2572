"""The Snowplow tracker protocol: POST /tp2 (payload_data) and GET /i (the pixel)."""

from __future__ import annotations

import orjson
from tracking_common.protocol import CONTEXTS_URI, UNSTRUCT_EVENT_URI
from tracking_common.record import decode_record

from tests.unit.api_service.api_support import BUTTON_CLICK, Api, MakeApi, tracker_page_view

TP2 = "/com.snowplowanalytics.snowplow/tp2"


async def test_tp2_keeps_the_payload_and_moves_stm_to_device_sent_tstamp(api: Api) -> None:
    payload = tracker_page_view(
        eid="c6ef3124-b53a-4b13-a233-0088f79dcbcb",
        aid="shop",
        duid="d-1",
        cookie="1",
        cs="UTF-8",
        stm="1700000000100",
        dtm="1700000000000",
    )
    answer = await api.tp2([payload], headers={"user-agent": "test-agent/1.0"})

    assert answer.status_code == 200
    assert answer.json()["event_ids"] == [payload["eid"]]
    [message] = api.publisher.on("events")
    record = decode_record(message.value)
    assert record.source == "tp2"
    assert record.device_sent_tstamp == 1_700_000_000_100
    expected = {k: v for k, v in payload.items() if k != "stm"}
    server_fields = {"ip": "127.0.0.1", "ua": "test-agent/1.0", "tnuid": answer.cookies["sp"]}
    assert record.payload == {**expected, **server_fields}
    assert message.key == b"shop:d-1"


async def test_tp2_keeps_ip_and_ua_the_tracker_sent(api: Api) -> None:
    payload = tracker_page_view(ip="198.51.100.1", ua="tracker-agent")

    await api.tp2([payload], headers={"user-agent": "proxy-agent"})

    [message] = api.publisher.on("events")
    record = decode_record(message.value)
    assert (record.payload["ip"], record.payload["ua"]) == ("198.51.100.1", "tracker-agent")


async def test_forwarded_for_is_used_only_when_trusted(make_api: MakeApi) -> None:
    # Two trusted proxies: an ingress appended 10.0.0.1, the one before it the client's address.
    trusting = make_api(api_trust_forwarded_for=True, api_trusted_proxy_hops=2)
    wary = make_api()
    headers = {"x-forwarded-for": "203.0.113.9, 10.0.0.1"}

    await trusting.tp2([tracker_page_view()], headers=headers)
    await wary.tp2([tracker_page_view()], headers=headers)

    assert decode_record(trusting.publisher.on("events")[0].value).payload["ip"] == "203.0.113.9"
    assert decode_record(wary.publisher.on("events")[0].value).payload["ip"] == "127.0.0.1"


async def test_tp2_rejects_bad_items_by_index_and_keeps_them(api: Api) -> None:
    answer = await api.tp2(
        [tracker_page_view(), {"e": "pv", "p": "web"}, tracker_page_view(e="zz")]
    )

    assert answer.status_code == 207
    body = answer.json()
    assert body["accepted"] == 1
    assert [rejected["index"] for rejected in body["errors"]] == [1, 2]
    assert len(api.publisher.on("events_bad")) == 2
    assert {bad["data"]["source"] for bad in api.publisher.values("events_bad")} == {"tp2"}


async def test_tp2_needs_a_payload_data_envelope(api: Api) -> None:
    wrong = {"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": [tracker_page_view()]}

    answer = await api.client.post(TP2, json=wrong)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_payload_data"
    [bad] = api.publisher.values("events_bad")
    assert orjson.loads(bad["data"]["raw"]) == wrong


async def test_tp2_with_duplicate_eids_rejects_the_second(api: Api) -> None:
    eid = "c6ef3124-b53a-4b13-a233-0088f79dcbcb"

    answer = await api.tp2([tracker_page_view(eid=eid), tracker_page_view(eid=eid)])

    assert answer.status_code == 207
    assert answer.json()["errors"][0]["errors"][0]["code"] == "duplicate_event_id"


async def test_the_pixel_answers_a_gif_and_publishes_the_query(api: Api) -> None:
    answer = await api.client.get(
        "/i", params=tracker_page_view(aid="shop", uid="u-9"), headers={"user-agent": "ua"}
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.content.startswith(b"GIF89a")
    [message] = api.publisher.on("events")
    record = decode_record(message.value)
    assert record.source == "pixel"
    assert record.payload["uid"] == "u-9"
    assert message.key == b"shop:u-9"


async def test_a_pixel_without_a_query_or_with_a_bad_event_is_400(api: Api) -> None:
    empty = await api.client.get("/i")
    bad = await api.client.get("/i", params={"e": "pv"})

    assert empty.status_code == 400
    assert bad.status_code == 400
    assert bad.json()["rejected"] == 1
    assert len(api.publisher.on("events_bad")) == 1


async def test_tp2_errors_name_the_keys_the_tracker_sent(api: Api) -> None:
    unstruct = {
        "schema": UNSTRUCT_EVENT_URI,
        "data": {"schema": BUTTON_CLICK, "data": {"button_id": "far-too-long-id"}},
    }
    contexts = {
        "schema": CONTEXTS_URI,
        "data": [{"schema": BUTTON_CLICK, "data": {"button_id": 7}}],
    }
    item = tracker_page_view(
        e="ue",
        aid="a" * 300,
        ue_pr=orjson.dumps(unstruct).decode(),
        co=orjson.dumps(contexts).decode(),
    )
    schema_only = tracker_page_view(e="ue", ue_pr=orjson.dumps(unstruct).decode())

    answer = await api.tp2([item, schema_only])

    assert answer.status_code == 400
    first, second = answer.json()["errors"]
    assert [error["path"] for error in first["errors"]] == ["/aid"]
    paths = {error["path"] for error in second["errors"]}
    assert paths == {"/ue_pr/data/data/button_id"}


async def test_tp2_entity_errors_point_into_co(api: Api) -> None:
    contexts = {
        "schema": CONTEXTS_URI,
        "data": [
            {"schema": BUTTON_CLICK, "data": {"button_id": "ok"}},
            {"schema": BUTTON_CLICK, "data": {"button_id": 7}},
        ],
    }

    answer = await api.tp2([tracker_page_view(co=orjson.dumps(contexts).decode())])

    assert answer.status_code == 400
    [rejected] = answer.json()["errors"]
    assert [error["path"] for error in rejected["errors"]] == ["/co/data/1/data/button_id"]


async def test_tp2_a_schema_key_too_long_for_a_file_name_is_an_unknown_schema(api: Api) -> None:
    unstruct = {
        "schema": UNSTRUCT_EVENT_URI,
        "data": {"schema": f"iglu:{'a' * 300}/ctx/jsonschema/1-0-0", "data": {}},
    }

    answer = await api.tp2([tracker_page_view(e="ue", ue_pr=orjson.dumps(unstruct).decode())])

    assert answer.status_code == 400
    [rejected] = answer.json()["errors"]
    assert [error["code"] for error in rejected["errors"]] == ["unknown_schema"]
