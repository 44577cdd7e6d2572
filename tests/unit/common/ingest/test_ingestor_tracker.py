"""Ingestor.tracker and tracker_payloads: tracker-protocol items into records that keep the
tracker's payload, completed by the request's facts."""

from __future__ import annotations

import orjson
import pytest
from tracking_common.errors import ValidationIssue
from tracking_common.ingest import Ingestor, TooManyEventsError, UnreadableBodyError
from tracking_common.protocol import (
    ANONYMOUS_NETWORK_USER_ID,
    CONTEXTS_URI,
    UNSTRUCT_EVENT_URI,
    RequestFacts,
    redirect_payload,
)

from tests.unit.api_service.api_support import BUTTON_CLICK, tracker_page_view
from tests.unit.common.ingest.ingest_support import (
    FACTS,
    PAYLOAD_DATA,
    MakeIngestor,
    bad_events,
    codes,
    records,
    tp2,
)


async def test_the_payload_is_kept_completed_and_stm_moves_to_device_sent_tstamp(
    ingestor: Ingestor,
) -> None:
    payload = tracker_page_view(
        eid="c6ef3124-b53a-4b13-a233-0088f79dcbcb",
        aid="shop",
        duid="d-1",
        cookie="1",
        stm="1700000000100",
        dtm="1700000000000",
    )
    batch = await tp2(ingestor, [payload])

    assert batch.accepted_ids == [payload["eid"]]
    [record] = records(batch)
    assert record["source"] == "tp2"
    assert record["device_sent_tstamp"] == 1_700_000_000_100
    expected = {k: v for k, v in payload.items() if k != "stm"}
    assert record["payload"] == {**expected, "ip": FACTS.ip, "ua": FACTS.useragent}
    assert batch.messages[0].key == b"shop:d-1"


async def test_a_missing_eid_gets_the_generated_one(ingestor: Ingestor) -> None:
    batch = await tp2(ingestor, [tracker_page_view()])

    [event_id] = batch.accepted_ids
    assert records(batch)[0]["payload"]["eid"] == event_id


async def test_the_trackers_own_ip_and_ua_win(ingestor: Ingestor) -> None:
    batch = await tp2(ingestor, [tracker_page_view(ip="198.51.100.1", ua="tracker-agent")])

    payload = records(batch)[0]["payload"]
    assert (payload["ip"], payload["ua"]) == ("198.51.100.1", "tracker-agent")


async def test_an_anonymous_request_records_no_ip(ingestor: Ingestor) -> None:
    facts = RequestFacts(useragent="ua", anonymous=True)
    batch = await tp2(ingestor, [tracker_page_view(ip="198.51.100.1")], facts)

    payload = records(batch)[0]["payload"]
    assert "ip" not in payload
    assert payload["tnuid"] == ANONYMOUS_NETWORK_USER_ID


async def test_bad_items_are_rejected_by_index_and_kept(ingestor: Ingestor) -> None:
    items = [
        tracker_page_view(),
        {"e": "pv"},
        [1],
        tracker_page_view(unknown="x"),
        {"e": "zz", "p": "web", "tv": "t"},
    ]
    batch = await tp2(ingestor, items)

    assert batch.accepted == 1
    assert [r.index for r in batch.rejections] == [1, 2, 3, 4]
    assert [codes(batch, i)[0][1] for i in range(4)] == [
        "schema_violation",
        "invalid_type",
        "schema_violation",
        "unsupported_event_type",
    ]
    assert [bad["index"] for bad in bad_events(batch)] == [1, 2, 3, 4]
    assert orjson.loads(bad_events(batch)[0]["raw"]) == {"e": "pv"}


async def test_a_value_that_is_not_a_string_is_a_schema_violation(ingestor: Ingestor) -> None:
    batch = await tp2(ingestor, [{**tracker_page_view(), "aid": 7}])

    [(path, code)] = codes(batch)
    assert (path, code) == ("/aid", "schema_violation")
    assert "the event" in batch.rejections[0].issues[0].message


async def test_duplicate_eids_reject_the_second(ingestor: Ingestor) -> None:
    item = tracker_page_view(eid="c6ef3124-b53a-4b13-a233-0088f79dcbcb")
    batch = await tp2(ingestor, [item, item])

    assert batch.accepted == 1
    assert codes(batch) == [("/event_id", "duplicate_event_id")]
    assert batch.rejections[0].event_id == item["eid"]


async def test_errors_name_the_keys_the_tracker_sent(ingestor: Ingestor) -> None:
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

    batch = await tp2(ingestor, [item, schema_only])

    assert [path for path, _ in codes(batch, 0)] == ["/aid"]
    assert [path for path, _ in codes(batch, 1)] == ["/ue_pr/data/data/button_id"]


async def test_entity_errors_point_into_co(ingestor: Ingestor) -> None:
    contexts = {
        "schema": CONTEXTS_URI,
        "data": [
            {"schema": BUTTON_CLICK, "data": {"button_id": "ok"}},
            {"schema": BUTTON_CLICK, "data": {"button_id": 7}},
        ],
    }
    batch = await tp2(ingestor, [tracker_page_view(co=orjson.dumps(contexts).decode())])

    assert [path for path, _ in codes(batch)] == ["/co/data/1/data/button_id"]


async def test_a_schema_key_too_long_for_a_file_name_is_an_unknown_schema(
    ingestor: Ingestor,
) -> None:
    unstruct = {
        "schema": UNSTRUCT_EVENT_URI,
        "data": {"schema": f"iglu:{'a' * 300}/ctx/jsonschema/1-0-0", "data": {}},
    }
    batch = await tp2(ingestor, [tracker_page_view(e="ue", ue_pr=orjson.dumps(unstruct).decode())])

    assert [code for _, code in codes(batch)] == ["unknown_schema"]


async def test_an_oversized_item_is_rejected(make_ingestor: MakeIngestor) -> None:
    ingestor = make_ingestor(max_event_bytes=512)
    batch = await tp2(ingestor, [tracker_page_view(url="https://x/" + "p" * 600)])

    assert codes(batch) == [("", "event_too_large")]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"{", "invalid_json"),
        (b'{"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": []}', "invalid_payload_data"),
        (b'{"data": []}', "invalid_payload_data"),
        (b"[]", "invalid_payload_data"),
        (
            b'{"schema": "%s", "data": []}' % PAYLOAD_DATA.encode(),
            "no_events",
        ),
        (
            b'{"schema": "%s", "data": {}}' % PAYLOAD_DATA.encode(),
            "invalid_payload_data",
        ),
        (b"[" * 40 + b"]" * 40, "too_deep"),
        (b'{"schema": "%s", "data": [{"e": 1e400}]}' % PAYLOAD_DATA.encode(), "invalid_json"),
    ],
)
async def test_unreadable_bodies_are_refused_with_their_code(
    ingestor: Ingestor, body: bytes, code: str
) -> None:
    with pytest.raises(UnreadableBodyError) as refused:
        await ingestor.tracker(body, source="tp2", now_ms=1, trace=[], request_id="r", facts=FACTS)

    assert refused.value.code == code


async def test_an_item_nested_too_deep_refuses_the_body(make_ingestor: MakeIngestor) -> None:
    ingestor = make_ingestor(max_json_depth=6)

    with pytest.raises(UnreadableBodyError) as refused:
        await tp2(ingestor, [{"e": {"a": {"b": {"c": {}}}}}])  # the last {} at level 7

    assert refused.value.code == "too_deep"


async def test_too_many_items_are_refused(make_ingestor: MakeIngestor) -> None:
    ingestor = make_ingestor(max_events_per_request=2)

    with pytest.raises(TooManyEventsError):
        await tp2(ingestor, [tracker_page_view() for _ in range(3)])


async def test_query_string_payloads_are_checked_like_items(ingestor: Ingestor) -> None:
    redirect = redirect_payload({"u": "https://shop.example/landing", "aid": "shop"})
    batch = await ingestor.tracker_payloads(
        [tracker_page_view(aid="shop"), {"e": "pv"}, redirect],
        source="pixel",
        now_ms=1,
        trace=[("traceparent", b"00-1-2-01")],
        request_id="r",
        facts=FACTS,
    )

    assert batch.accepted == 2
    assert [r.index for r in batch.rejections] == [1]
    assert [record["source"] for record in records(batch)] == ["pixel", "pixel"]
    assert ("traceparent", b"00-1-2-01") in batch.messages[0].headers


async def test_the_whole_request_is_kept_as_one_bad_event(ingestor: Ingestor) -> None:
    message = ingestor.whole_request(
        b"{oops", ValidationIssue("", "invalid_json", "no"), source="tp2", now_ms=5, request_id="r"
    )

    data = orjson.loads(message.value)["data"]
    assert (message.topic, message.key) == ("events_bad", b"r")
    assert (data["raw"], data["index"], data["received_tstamp"]) == ("{oops", None, 5)
