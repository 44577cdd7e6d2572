"""The local collector over real HTTP: Snowplow endpoints, the Micro-style API and faults."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support.collector import RunningCollector, start_collector

TP2 = "/com.snowplowanalytics.snowplow/tp2"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
CLICK = "iglu:com.example/click/jsonschema/1-0-0"
USER = "iglu:com.example/user/jsonschema/1-0-0"


def event(e: str = "pv", **fields: str) -> dict[str, str]:
    """A minimal valid tracker-protocol event with a fresh eid."""
    return {"e": e, "p": "web", "tv": "test-1", "eid": str(uuid.uuid4()), **fields}


def self_describing(schema: str, *, encoded: bool) -> dict[str, str]:
    wrapper = {
        "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        "data": {"schema": schema, "data": {"x": 1}},
    }
    raw = orjson.dumps(wrapper)
    if encoded:
        return event("ue", ue_px=base64.urlsafe_b64encode(raw).decode().rstrip("="))
    return event("ue", ue_pr=raw.decode())


def body(*events: dict[str, str]) -> bytes:
    return orjson.dumps({"schema": PAYLOAD_DATA, "data": list(events)})


async def post(collector: RunningCollector, payload: bytes) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(collector.base_url + TP2, data=payload) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def test_valid_post_is_stored_with_schemas_times_and_stm(collector: RunningCollector) -> None:
    contexts = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [{"schema": USER, "data": {"id": "u"}}],
    }
    first = self_describing(CLICK, encoded=True)
    second = event("pv", aid="shop", stm="1700000000000", co=orjson.dumps(contexts).decode())

    status, _, _ = await post(collector, body(first, second))

    assert status == 200
    assert await collector.count() == 2
    assert await collector.eids() == [first["eid"], second["eid"]]
    good = await collector.good()
    assert good[0]["schema"] == CLICK
    assert good[0]["event_type"] == "ue"
    assert good[1]["contexts"] == [USER]
    assert good[1]["app_id"] == "shop"
    assert good[1]["stm"] == "1700000000000"
    assert good[1]["event"] == second
    assert all(entry["received_at"].endswith("Z") for entry in good)
    assert await collector.totals() == {"total": 2, "good": 2, "bad": 0}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not valid JSON"),
        (orjson.dumps({"schema": "iglu:x/y/jsonschema/1-0-0", "data": []}), "payload_data"),
        (body(), "has less than 1 item"),
        (body({"e": "pv", "p": "web"}), "tv"),
        (body(event(unknown_field="1")), "unknown_field"),
    ],
)
async def test_invalid_post_is_400_with_a_reason_and_recorded_bad(
    collector: RunningCollector, payload: bytes, reason: str
) -> None:
    status, _, answer = await post(collector, payload)

    assert status == 400
    assert reason in orjson.loads(answer)["reason"]
    assert await collector.count() == 0
    [bad] = await collector.bad()
    assert reason in bad["reason"]
    assert await collector.totals() == {"total": 1, "good": 0, "bad": 1}


async def test_unreadable_self_describing_event_is_bad_but_the_request_succeeds(
    collector: RunningCollector,
) -> None:
    good = event()
    status, _, _ = await post(collector, body(good, event("ue", ue_px="!!!not-base64")))

    assert status == 200
    assert await collector.eids() == [good["eid"]]
    [bad] = await collector.bad()
    assert "ue_px" in bad["reason"]


async def test_pixel_get_answers_a_gif_and_stores_the_event(collector: RunningCollector) -> None:
    pv = event(aid="pixel-app")
    async with (
        aiohttp.ClientSession() as session,
        session.get(collector.base_url + "/i", params=pv) as response,
    ):
        assert response.status == 200
        assert response.content_type == "image/gif"
        assert (await response.read()).startswith(b"GIF89a")
        async with session.get(collector.base_url + "/i", params={"e": "pv"}) as invalid:
            assert invalid.status == 400

    [entry] = await collector.good()
    assert entry["event"] == pv
    assert entry["path"] == "/i"
    assert len(await collector.bad()) == 1


async def test_good_filters_and_paging(collector: RunningCollector) -> None:
    events = [
        event("pv", aid="a"),
        event("se", aid="b", se_ca="c", se_ac="d"),
        self_describing(CLICK, encoded=False) | {"aid": "a"},
        event("pp", aid="a"),
    ]
    status, _, _ = await post(collector, body(*events))
    assert status == 200

    def eids(entries: list[dict[str, Any]]) -> list[str]:
        return [entry["eid"] for entry in entries]

    assert eids(await collector.good(event_type="se")) == [events[1]["eid"]]
    assert eids(await collector.good(app_id="a")) == [events[i]["eid"] for i in (0, 2, 3)]
    assert eids(await collector.good(eid=events[3]["eid"])) == [events[3]["eid"]]
    assert eids(await collector.good(schema=CLICK)) == [events[2]["eid"]]
    assert eids(await collector.good(app_id="a", limit=1, offset=1)) == [events[2]["eid"]]
    assert eids(await collector.good(offset=3)) == [events[3]["eid"]]
    with pytest.raises(AssertionError, match="400"):
        await collector.good(limit="-1")


async def test_status_fault_with_count_is_consumed_per_request(
    collector: RunningCollector,
) -> None:
    await collector.inject({"status": 500, "count": 2})

    first = await post(collector, body(event()))
    second = await post(collector, body(event()))
    kept = event()
    third = await post(collector, body(kept))

    assert [first[0], second[0], third[0]] == [500, 500, 200]
    assert await collector.eids() == [kept["eid"]]
    assert await collector.faults() == []


async def test_status_fault_for_a_duration_sends_retry_after(collector: RunningCollector) -> None:
    await collector.inject({"status": 503, "duration_s": 60, "retry_after": "1"})

    statuses = [await post(collector, body(event())) for _ in range(3)]

    assert {status for status, _, _ in statuses} == {503}
    assert all(headers["Retry-After"] == "1" for _, headers, _ in statuses)
    [fault] = await collector.faults()
    assert 0 < fault["remaining_s"] <= 60
    assert await collector.count() == 0


async def test_fault_until_cleared(collector: RunningCollector) -> None:
    await collector.inject({"status": 502})
    assert (await post(collector, body(event())))[0] == 502
    assert (await post(collector, body(event())))[0] == 502

    await collector.clear_faults()

    assert (await post(collector, body(event())))[0] == 200
    assert await collector.count() == 1


async def test_delay_fault_answers_normally_after_the_delay(collector: RunningCollector) -> None:
    await collector.inject({"delay_s": 0.3, "count": 1})
    delayed = event()

    started = time.monotonic()
    status, _, _ = await post(collector, body(delayed))

    assert status == 200
    assert time.monotonic() - started >= 0.3
    assert await collector.eids() == [delayed["eid"]]
    assert await collector.faults() == []


async def test_drop_connection_answers_nothing_and_stores_nothing(
    collector: RunningCollector,
) -> None:
    await collector.inject({"drop_connection": True, "count": 1})

    with pytest.raises(aiohttp.ClientConnectionError):
        await post(collector, body(event()))

    assert (await post(collector, body(event())))[0] == 200
    assert await collector.count() == 1


async def test_max_events_fault_answers_413_only_to_large_batches(
    collector: RunningCollector,
) -> None:
    await collector.inject({"status": 413, "max_events": 3})

    large = await post(collector, body(*(event() for _ in range(4))))
    small = await post(collector, body(*(event() for _ in range(3))))

    assert (large[0], small[0]) == (413, 200)
    assert await collector.count() == 3


async def test_when_eid_fault_rejects_only_bodies_with_those_eids(
    collector: RunningCollector,
) -> None:
    poisoned = event()
    await collector.inject({"status": 400, "when_eid": [poisoned["eid"]]})

    rejected = await post(collector, body(event(), poisoned))
    clean = event()
    accepted = await post(collector, body(clean))

    assert (rejected[0], accepted[0]) == (400, 200)
    assert await collector.eids() == [clean["eid"]]
    assert await collector.bad() == []


async def test_faults_apply_in_order_and_only_to_snowplow_endpoints(
    collector: RunningCollector,
) -> None:
    await collector.inject({"status": 500, "count": 1})
    await collector.inject({"status": 503, "count": 1})

    assert await collector.count() == 0
    assert [(await post(collector, body(event())))[0] for _ in range(3)] == [500, 503, 200]
    async with aiohttp.ClientSession() as session:
        await collector.inject({"status": 504, "count": 1})
        async with session.get(collector.base_url + "/i", params=event()) as response:
            assert response.status == 504
        async with session.get(collector.base_url + "/healthz") as health:
            assert await health.json() == {"status": "ok"}


async def test_invalid_fault_is_refused(collector: RunningCollector) -> None:
    for fault in ({"count": 2}, {"status": 500, "colour": "red"}, {"status": 99}):
        with pytest.raises(AssertionError, match="400"):
            await collector.inject(fault)
    assert await collector.faults() == []


async def test_reset_clears_events_and_faults(collector: RunningCollector) -> None:
    await post(collector, body(event()))
    await post(collector, b"{}")
    await collector.inject({"status": 500})

    await collector.reset()

    assert await collector.totals() == {"total": 0, "good": 0, "bad": 0}
    assert await collector.good() == []
    assert await collector.bad() == []
    assert await collector.faults() == []
    assert (await post(collector, body(event())))[0] == 200


async def test_count_only_counts_without_keeping_events() -> None:
    with start_collector(count_only=True) as collector:
        status, _, _ = await post(collector, body(event(), event()))
        invalid, _, _ = await post(collector, body({"e": "pv"}))

        assert (status, invalid) == (200, 400)
        assert await collector.wait_for_count(2) == 2
        assert await collector.good() == []
        assert await collector.eids() == []
        assert await collector.totals() == {"total": 3, "good": 2, "bad": 1}


async def test_max_events_keeps_the_newest_and_counts_all() -> None:
    with start_collector(max_events=2) as collector:
        events = [event() for _ in range(5)]
        await post(collector, body(*events))

        assert await collector.count() == 5
        assert await collector.eids() == [e["eid"] for e in events[-2:]]


async def test_wait_for_count_times_out_with_the_count(collector: RunningCollector) -> None:
    await post(collector, body(event()))
    with pytest.raises(TimeoutError, match="1 good events"):
        await collector.wait_for_count(2, timeout_s=0.2)
