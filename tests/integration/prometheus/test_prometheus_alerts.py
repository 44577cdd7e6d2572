"""The alert rules and the dashboard, run by a real Prometheus against the real services.

One Prometheus scrapes six processes every second, each target in its own ``namespace`` with
one fault, all at once (so the scenario takes about a minute, not one phase after another):

=============  ===================================================================
healthy        the API and a forwarder delivering to a collector answering 200
collector-5xx  a forwarder whose collector answers 500 (an outage), small backlog
collector-401  a forwarder whose collector answers 401 (a setup failure)
collector-400  a forwarder whose collector answers 400 (events dead-lettered)
kafka-down     an API whose Kafka is unreachable (503 for every request)
=============  ===================================================================

The rule file is loaded unchanged: each alert must go pending (or fire) with its real
expression in the namespace of its fault and in no other, and every dashboard query must
return data. Alerts whose fault cannot happen in a minute (lag past 10,000 and rising for 15
minutes, events near a 72-hour retention, slow produce, shedding, commits failing, absent
targets, an API unready for 10 minutes) are covered by promtool's unit tests of the same file
(tests/unit/ship/test_ship_alert_rules.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from scripts import check_terraform
from tests.integration.api_service.api_it import AUTH, Topics, api_process, page_view
from tests.integration.forwarder_service.forwarder_it import Forwarder, fast_env
from tests.integration.prometheus.prometheus_it import RUNBOOK_BASE_URL, Prometheus
from tests.support.kafka import create_topic, unique_name
from tests.support.services import ServiceProcess, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

EXPECTED = {
    ("TrackingForwarderDeliveryStalled", "collector-5xx"),
    ("TrackingForwarderPartitionsPaused", "collector-5xx"),
    ("TrackingForwarderSetupFailures", "collector-401"),
    ("TrackingForwarderNotReady", "collector-401"),
    ("TrackingForwarderDeadLetters", "collector-400"),
    ("TrackingForwarderDeadLetterRatioHigh", "collector-400"),
    ("TrackingApiKafkaErrors", "kafka-down"),
    ("TrackingApiKafkaUnavailable", "kafka-down"),
    ("TrackingApi5xxRate", "kafka-down"),
}
DEADLINE_S = 240
START_TIMEOUT_S = 180.0


@contextlib.asynccontextmanager
async def fault_collector() -> AsyncIterator[str]:
    """A collector answering ``/<status>/...`` with that status: its base URL."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=int(request.match_info["status"]))

    app = web.Application()
    app.router.add_route("*", r"/{status:\d{3}}/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _traffic(url: str, stop: asyncio.Event) -> None:
    """Nine page views and one invalid event every 100 ms until ``stop`` (the rejection
    panels need rejections too); answers are the scenario's business."""
    async with httpx.AsyncClient(timeout=10) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                batch = {"events": [*(page_view() for _ in range(9)), {"event_type": "struct"}]}
                await client.post(f"{url}/v1/events", json=batch, headers=AUTH)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await stop.wait()


async def _wait_for_alerts(prometheus: Prometheus) -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DEADLINE_S):
            while not seen >= EXPECTED:
                for alert in await prometheus.alerts():
                    labels = alert["labels"]
                    seen.add((labels["alertname"], labels.get("namespace", "")))
                    url = alert["annotations"]["runbook_url"]
                    assert url.startswith(f"{RUNBOOK_BASE_URL}/docs/operations.md#"), alert
                await asyncio.sleep(1)
    return seen


async def test_each_alert_goes_pending_on_its_fault_and_every_panel_has_data(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = await Topics(kafka_bootstrap).create(partitions=2)
    api, api_url, api_admin = api_process(topics, tmp_path)
    dead_kafka = f"127.0.0.1:{free_port()}"  # nothing listens there
    down_api, down_url, down_admin = api_process(
        topics, tmp_path, KAFKA_BOOTSTRAP_SERVERS=dead_kafka, API_PRODUCE_TIMEOUT_S="1"
    )
    # Never ready (its producer never connects): started once it is alive.
    down_api = ServiceProcess(
        down_api.command, down_api.env, f"{down_admin}/healthz", down_api.log_path
    )
    async with fault_collector() as collector:
        forwarders: dict[str, Forwarder] = {}
        for namespace, status, extra in (
            ("healthy", 200, {}),
            ("collector-5xx", 500, {"FORWARDER_MAX_BACKLOG_EVENTS": "20"}),
            ("collector-401", 401, {}),
            ("collector-400", 400, {}),
        ):
            dlq = await create_topic(kafka_bootstrap, unique_name(f"dlq-{status}"))
            env = fast_env(
                kafka_bootstrap,
                topic=topics.events,
                dlq=dlq,
                group=unique_name(f"prom-{status}"),
                collector_url=f"{collector}/{status}",
            )
            forwarders[namespace] = Forwarder(
                {**env, **extra}, tmp_path / f"forwarder-{status}.log", ready_path="/healthz"
            )
        targets = {
            namespace: [forwarder.admin_url.removeprefix("http://")]
            for namespace, forwarder in forwarders.items()
        }
        targets["healthy"].append(api_admin.removeprefix("http://"))
        targets["kafka-down"] = [down_admin.removeprefix("http://")]
        stop = asyncio.Event()
        try:
            # Six processes start at once: on a busy 2-core machine that takes a while.
            started = await asyncio.gather(
                asyncio.to_thread(api.start, START_TIMEOUT_S),
                asyncio.to_thread(down_api.start, START_TIMEOUT_S),
                *(
                    asyncio.to_thread(forwarder.service.start, START_TIMEOUT_S)
                    for forwarder in forwarders.values()
                ),
                return_exceptions=True,
            )
            failed = [result for result in started if isinstance(result, BaseException)]
            if failed:
                raise failed[0]
            async with Prometheus(tmp_path, targets) as prometheus:
                traffic = [
                    asyncio.create_task(_traffic(api_url, stop)),
                    asyncio.create_task(_traffic(down_url, stop)),
                ]
                seen = await _wait_for_alerts(prometheus)
                assert sorted(EXPECTED - seen) == [], prometheus.log()
                assert sorted(key for key in seen if key[1] == "healthy") == []

                # Counters start at 0: the healthy forwarder's setup-failure series exists.
                zero = await prometheus.query(
                    'tracking_forwarder_setup_failures_total{namespace="healthy",status="401"}'
                )
                assert [sample["value"][1] for sample in zero] == ["0"]
                empty = [
                    expr
                    for expr in check_terraform.dashboard_exprs()
                    if not await prometheus.query(expr)
                ]
                assert empty == []
                stop.set()
                await asyncio.gather(*traffic)
        finally:
            stop.set()
            await asyncio.gather(
                *(forwarder.stop() for forwarder in forwarders.values()),
                asyncio.to_thread(api.stop),
                asyncio.to_thread(down_api.stop),
            )
