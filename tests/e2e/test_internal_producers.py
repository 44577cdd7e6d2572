"""Internal producers on real parts: the library and the command line -> Kafka -> forwarder ->
collector, beside the same event posted to the API. Downstream the three are the same event
(only the record's ``source`` and the event ids differ)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from tracking_producer import EventProducer

from tests.e2e.conftest import API_KEY
from tests.support.collector import RunningCollector
from tests.support.pipeline import RunningPipeline

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WEB_PAGE = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"


def event(event_id: str) -> dict[str, Any]:
    """The same rich event every time, but for its id."""
    return {
        "event_id": event_id,
        "event_type": "struct",
        "app_id": "billing",
        "platform": "srv",
        "created_at": "2026-05-01T12:00:00.250Z",
        "category": "invoice",
        "action": "paid",
        "label": "eur",
        "value": 42.5,
        "subject": {"user_id": "u-42", "language": "en-GB"},
        "entities": [{"schema": WEB_PAGE, "data": {"id": "0c6b4f9e-1a7c-4f0e-9d8a-2b3c4d5e6f70"}}],
    }


async def test_library_and_command_line_events_arrive_as_the_api_s_do(
    pipeline: RunningPipeline,
    collector: RunningCollector,
    kafka_bootstrap: str,
    topics: dict[str, str],
    tmp_path: Path,
) -> None:
    api_id, library_id, cli_id = (str(uuid.uuid4()) for _ in range(3))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{pipeline.url}/v1/events",
            json=event(api_id),
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as answer,
    ):
        assert answer.status == 200, await answer.text()
    async with EventProducer(
        bootstrap_servers=kafka_bootstrap, topic=topics["EVENTS_TOPIC"]
    ) as producer:
        assert await producer.send(event(library_id)) == library_id
        payload = {"e": "pv", "p": "srv", "tv": "sh-1", "url": "https://a.example/", "aid": "ops"}
        [payload_id] = await producer.send_payloads([payload])
    lines = tmp_path / "events.jsonl"
    lines.write_bytes(orjson.dumps(event(cli_id)) + b"\n{not json\n")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, **topics}
    done = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).parent / "tracking-produce"), str(lines)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # the second line is not JSON
    assert "2 lines: 1 produced, 1 rejected, 0 failed" in done.stderr

    await collector.wait_for_count(4, timeout_s=30)
    assert await collector.bad() == []
    received = {}
    for item in await collector.good():
        fields = dict(item.get("event", item))
        received[fields.pop("eid")] = fields
    assert set(received) == {api_id, library_id, cli_id, payload_id}
    assert received[payload_id]["tv"] == "sh-1"
    for fields in received.values():
        assert fields.pop("stm").isdigit()  # set by the forwarder on each send
    assert received[library_id] == received[api_id]
    assert received[cli_id] == received[api_id]
    assert received[api_id]["se_ca"] == "invoice"
    assert received[api_id]["uid"] == "u-42"
    assert "web_page" in received[api_id]["co"] or "cx" in received[api_id]
