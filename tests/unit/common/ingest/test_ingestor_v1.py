"""Ingestor.v1: what a /v1 body's events become (records, rejections, bad events), and the
refusals of a whole body."""

from __future__ import annotations

import json
import uuid

import orjson
import pytest
from tracking_common.ingest import (
    Ingestor,
    SchemaRegistryUnavailableError,
    TooManyEventsError,
    UnreadableBodyError,
)
from tracking_common.record import partition_key

from tests.unit.api_service.api_support import BUTTON_CLICK, button_click, page_view
from tests.unit.common.ingest.ingest_support import (
    DownResolver,
    MakeIngestor,
    bad_events,
    codes,
    records,
    v1,
)

UNKNOWN = "iglu:com.acme/nothing/jsonschema/1-0-0"


async def test_a_single_event_becomes_one_keyed_record(ingestor: Ingestor) -> None:
    event_id = str(uuid.uuid4())
    batch = await v1(
        ingestor, page_view(event_id=event_id, app_id="shop", subject={"user_id": "u1"})
    )

    assert batch.accepted_ids == [event_id]
    [record] = records(batch)
    assert record["event_id"] == event_id
    assert record["source"] == "v1"
    assert record["collector_tstamp"] == 1_700_000_000_000
    assert record["payload"]["url"] == "https://shop.example/"
    [message] = batch.messages
    assert message.key == b"shop:u1" == partition_key(record["payload"])
    assert message.key_recurs
    assert dict(message.headers)["event-id"] == event_id.encode()


async def test_an_event_without_an_id_gets_one_and_its_own_key(ingestor: Ingestor) -> None:
    batch = await v1(ingestor, page_view())

    [event_id] = batch.accepted_ids
    assert uuid.UUID(event_id)
    assert batch.messages[0].key == event_id.encode()
    assert not batch.messages[0].key_recurs


async def test_a_batch_keeps_its_order(ingestor: Ingestor) -> None:
    ids = [str(uuid.uuid4()) for _ in range(5)]
    batch = await v1(ingestor, {"events": [page_view(event_id=event_id) for event_id in ids]})

    assert batch.accepted_ids == ids
    assert [record["event_id"] for record in records(batch)] == ids


async def test_sent_at_becomes_the_device_sent_tstamp(ingestor: Ingestor) -> None:
    batch = await v1(ingestor, page_view(sent_at="2023-11-14T22:13:20.100Z"))

    assert records(batch)[0]["device_sent_tstamp"] == 1_700_000_000_100


async def test_every_error_of_a_rejected_event_is_listed_and_kept(ingestor: Ingestor) -> None:
    bad = {"event_type": "struct", "category": ""}
    batch = await v1(ingestor, {"events": [page_view(), bad, page_view()]})

    assert batch.accepted == 2
    [rejection] = batch.rejections
    assert rejection.index == 1
    assert set(codes(batch)) == {("/category", "string_too_short"), ("/action", "missing")}
    [kept] = bad_events(batch)
    assert kept["index"] == 1
    assert kept["source"] == "v1"
    assert kept["request_id"] == "req-1"
    assert orjson.loads(kept["raw"]) == bad


async def test_a_batch_whose_events_all_decode_matches_them_one_by_one(
    ingestor: Ingestor,
) -> None:
    events = [
        page_view(app_id="a", event_id=str(uuid.uuid4())),
        button_click(event_id=str(uuid.uuid4())),
        page_view(subject={"user_id": "u"}, event_id=str(uuid.uuid4())),
    ]

    together = await v1(ingestor, {"events": events})
    alone = [records(await v1(ingestor, event))[0] for event in events]

    assert together.accepted == 3
    assert records(together) == alone


async def test_a_rejected_event_keeps_its_bytes_as_they_arrived(ingestor: Ingestor) -> None:
    body = b'{"events": [ {"event_type" : "page_view"} ]}'

    batch = await v1(ingestor, body)

    assert bad_events(batch)[0]["raw"] == '{"event_type" : "page_view"}'


async def test_wrong_types_are_named_by_path(ingestor: Ingestor) -> None:
    batch = await v1(
        ingestor, page_view(subject={"session_index": "many"}, entities="none", created_at=12.5e20)
    )

    paths = {path for path, _ in codes(batch)}
    assert {"/subject/session_index", "/entities"} <= paths


async def test_an_item_that_is_not_an_object_is_rejected_alone(ingestor: Ingestor) -> None:
    batch = await v1(ingestor, {"events": [page_view(), [1], "x"]})

    assert batch.accepted == 1
    assert [r.index for r in batch.rejections] == [1, 2]
    assert codes(batch) == [("", "invalid_type")]


async def test_the_model_has_the_last_word_on_what_it_coerces(ingestor: Ingestor) -> None:
    # msgspec is strict ("5" is not an int); the pydantic model accepts it: so is the event.
    event_id = "6BA7B8109DAD11D180B400C04FD430C8"
    batch = await v1(ingestor, page_view(event_id=event_id, subject={"session_index": "5"}))

    assert batch.accepted_ids == ["6ba7b810-9dad-11d1-80b4-00c04fd430c8"]
    assert records(batch)[0]["payload"]["vid"] == "5"


async def test_duplicate_event_ids_reject_the_second(ingestor: Ingestor) -> None:
    event_id = str(uuid.uuid4())
    batch = await v1(ingestor, {"events": [page_view(event_id=event_id)] * 2})

    assert batch.accepted_ids == [event_id]
    [rejection] = batch.rejections
    assert (rejection.index, rejection.event_id) == (1, event_id)
    assert codes(batch) == [("/event_id", "duplicate_event_id")]


async def test_self_describing_data_is_checked_against_its_schema(ingestor: Ingestor) -> None:
    batch = await v1(ingestor, {"events": [button_click("signup"), button_click("far-too-long")]})

    [rejection] = batch.rejections
    assert rejection.index == 1
    [(path, code)] = codes(batch)
    assert code == "schema_violation"
    assert path.startswith("/event/data")
    assert rejection.issues[0].message  # readable, and names the field
    assert "button_id" in rejection.issues[0].message


async def test_entities_are_checked_against_their_schemas(ingestor: Ingestor) -> None:
    entities = [
        {"schema": BUTTON_CLICK, "data": {"button_id": "a"}},
        {"schema": BUTTON_CLICK, "data": {"button_id": 7}},
    ]
    batch = await v1(ingestor, page_view(entities=entities))

    [(path, code)] = codes(batch)
    assert (path.startswith("/entities/1/data"), code) == (True, "schema_violation")


async def test_an_unknown_schema_is_rejected(ingestor: Ingestor) -> None:
    batch = await v1(
        ingestor, {"event_type": "self_describing", "event": {"schema": UNKNOWN, "data": {}}}
    )

    [issue] = batch.rejections[0].issues
    assert issue.as_dict() == {
        "path": "/event/schema",
        "code": "unknown_schema",
        "message": f"no schema {UNKNOWN}",
    }


async def test_unknown_schemas_pass_when_allowed(make_ingestor: MakeIngestor) -> None:
    ingestor = make_ingestor(allow_unknown_schemas=True)
    event = {"event_type": "self_describing", "event": {"schema": UNKNOWN, "data": {}}}

    assert (await v1(ingestor, event)).accepted == 1


BIG = 65420594018595879006502912
"""Beyond 64 bits: JSON allows it and msgspec reads it; orjson cannot write it (was a 500)."""


async def test_integers_beyond_64_bits_in_data_are_kept_exactly(
    make_ingestor: MakeIngestor,
) -> None:
    ingestor = make_ingestor(allow_unknown_schemas=True)
    entity = {"schema": UNKNOWN, "data": {"n": [BIG, -BIG]}}
    event = {
        "event_type": "self_describing",
        "event": {"schema": UNKNOWN, "data": {"n": BIG}},
        "entities": [entity],
    }

    batch = await v1(ingestor, json.dumps({"events": [event]}).encode())

    [record] = records(batch)
    assert f'"n":{BIG}' in record["payload"]["ue_pr"]
    assert f'"n":[{BIG},-{BIG}]' in record["payload"]["co"]


async def test_integers_beyond_64_bits_with_an_unknown_schema_are_rejected(
    ingestor: Ingestor,
) -> None:
    event = {"event_type": "self_describing", "event": {"schema": UNKNOWN, "data": {"n": BIG}}}

    batch = await v1(ingestor, json.dumps(event).encode())

    assert codes(batch) == [("/event/schema", "unknown_schema")]
    assert len(bad_events(batch)) == 1


async def test_a_schema_key_too_long_for_a_file_name_is_an_unknown_schema(
    ingestor: Ingestor,
) -> None:
    schema = "iglu:" + "a" * 300 + "/ctx/jsonschema/1-0-0"
    batch = await v1(ingestor, page_view(entities=[{"schema": schema, "data": {}}]))

    assert codes(batch) == [("/entities/0/schema", "unknown_schema")]


async def test_an_oversized_event_is_rejected_alone(make_ingestor: MakeIngestor) -> None:
    ingestor = make_ingestor(max_event_bytes=1024)
    batch = await v1(
        ingestor, {"events": [page_view(), page_view(app_id="x" * 200, page={"url": "u" * 2000})]}
    )

    assert batch.accepted == 1
    assert codes(batch) == [("", "event_too_large")]


async def test_an_unknown_event_type_lists_the_plain_values(ingestor: Ingestor) -> None:
    batch = await v1(ingestor, {"event_type": "transaction"})

    [issue] = batch.rejections[0].issues
    assert issue.path == "/event_type"
    assert "page_view, page_ping, struct, self_describing" in issue.message
    assert "<EventType" not in issue.message


async def test_a_registry_outage_refuses_the_request(make_ingestor: MakeIngestor) -> None:
    ingestor = make_ingestor(resolver=DownResolver([]))

    with pytest.raises(SchemaRegistryUnavailableError) as refused:
        await v1(ingestor, button_click())

    assert refused.value.code == "schema_registry_unavailable"
    assert "central timed out" in refused.value.message


async def test_too_many_events_are_refused(make_ingestor: MakeIngestor) -> None:
    ingestor = make_ingestor(max_events_per_request=3)

    with pytest.raises(TooManyEventsError) as refused:
        await v1(ingestor, {"events": [page_view() for _ in range(4)]})

    assert (refused.value.count, refused.value.limit, refused.value.code) == (
        4,
        3,
        "too_many_events",
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"{not json", "invalid_json"),
        (b"   ", "invalid_json"),
        (b'{"events": []}', "no_events"),
        (b'{"events": {}}', "invalid_batch"),
        (b'{"events": [], "more": 1}', "invalid_batch"),
        (b"[1, 2]", "invalid_body"),
        (b'"text"', "invalid_body"),
        (b"[" * 40 + b"]" * 40, "too_deep"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
        # msgspec reads the number; orjson (and so the fallback) refuses it: still a 400.
        (
            b'{"event_type": "struct", "category": "a", "action": "b", "value": 1e400}',
            "invalid_json",
        ),
        (b'{"events": [{"event_type": "page_view", "x": 1e400}]}', "invalid_json"),
        (b'{"events": [], "x": ' + b"[" * 40 + b"]" * 40 + b"}", "too_deep"),
    ],
)
async def test_unreadable_bodies_are_refused_with_their_code(
    ingestor: Ingestor, body: bytes, code: str
) -> None:
    with pytest.raises(UnreadableBodyError) as refused:
        await v1(ingestor, body)

    assert refused.value.code == code
    assert refused.value.message


@pytest.mark.parametrize("batched", [0, 1, 3])
async def test_self_describing_data_nested_too_deep_refuses_the_body(
    make_ingestor: MakeIngestor, batched: int
) -> None:
    ingestor = make_ingestor(max_json_depth=8)
    deep: object = "leaf"
    for _ in range(8):
        deep = {"d": deep}
    event = page_view(entities=[{"schema": BUTTON_CLICK, "data": deep}])
    # 3: a batch whose events all decode, the deep one among them
    body = {"events": [event] if batched == 1 else [page_view(), event, page_view()]}

    with pytest.raises(UnreadableBodyError) as refused:
        await v1(ingestor, body if batched else event)

    assert refused.value.code == "too_deep"


@pytest.mark.parametrize("depth", [4, 5, 6, 7])
async def test_the_depth_limit_counts_every_level_of_the_body(
    make_ingestor: MakeIngestor, depth: int
) -> None:
    # {"events": [ {event} ]} with an entity: data sits at level 6, its object at 7.
    ingestor = make_ingestor(max_json_depth=depth, allow_unknown_schemas=True)
    event = page_view(entities=[{"schema": UNKNOWN, "data": {"a": {}}}])
    body = {"events": [event]}

    if depth < 7:
        with pytest.raises(UnreadableBodyError):
            await v1(ingestor, body)
    else:
        assert (await v1(ingestor, body)).accepted == 1


async def test_event_ids_are_written_in_their_canonical_form(ingestor: Ingestor) -> None:
    upper, plain = uuid.uuid4(), uuid.uuid4()
    events = [page_view(event_id=str(upper).upper()), page_view(event_id=plain.hex), page_view()]

    batch = await v1(ingestor, {"events": events})

    assert batch.accepted_ids[:2] == [str(upper), str(plain)]
    generated = batch.accepted_ids[2]
    assert generated == str(uuid.UUID(generated))
    assert [record["event_id"] for record in records(batch)] == batch.accepted_ids
    assert [record["payload"]["eid"] for record in records(batch)] == batch.accepted_ids
