"""The pipeline over SASL_SSL (SCRAM), and the services refusing to start on credentials or
certificates the broker refuses: exit code 2, naming the setting, never a retry loop."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from scripts.kafka.security import make_ca
from tests.support.collector import RunningCollector
from tests.support.kafka import SecureKafka
from tests.support.pipeline import create_topics, run_pipeline
from tests.support.services import BIN, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]

API_KEY = "e2e-" + uuid.uuid4().hex
WRONG_PASSWORD = "not-the-" + uuid.uuid4().hex


@pytest.fixture
async def topics(secure_kafka: SecureKafka) -> dict[str, str]:
    return await create_topics(secure_kafka.bootstrap, "sasl", options=secure_kafka.options)


@pytest.fixture
def secured_pipeline(
    secure_kafka: SecureKafka,
    topics: dict[str, str],
    collector: RunningCollector,
    tmp_path: Path,
) -> Iterator[str]:
    """The API and the forwarder as processes, connected as ``tracking`` over SASL_SSL."""
    with run_pipeline(
        kafka_env=secure_kafka.env(),
        topics=topics,
        collector_url=collector.base_url,
        workdir=tmp_path,
        api_env={"API_KEYS": API_KEY},
    ) as running:
        yield running.url
    password = secure_kafka.env()["KAFKA_SASL_PASSWORD"]
    for service in (running.api, running.forwarder):
        assert password not in service.log(lines=10_000)
        assert "SASL_SSL, SCRAM-SHA-512 as 'tracking'" in service.log(lines=10_000)


async def test_events_flow_from_the_api_to_the_collector_over_sasl_ssl(
    secured_pipeline: str, collector: RunningCollector
) -> None:
    event_ids = [str(uuid.uuid4()) for _ in range(3)]
    events = [
        {"event_id": eid, "event_type": "page_view", "page": {"url": "https://example.com/"}}
        for eid in event_ids
    ]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{secured_pipeline}/v1/events",
            json={"events": events},
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as answer,
    ):
        assert answer.status == 200, await answer.text()

    await collector.wait_for_count(3, timeout_s=60)
    assert sorted(await collector.eids()) == sorted(event_ids)


def _api_env(port: int) -> dict[str, str]:
    return {
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_ADMIN_HOST": "127.0.0.1",
        "API_ADMIN_PORT": str(free_port()),
        "API_KEYS": API_KEY,
        "API_DRAIN_GRACE_S": "0",
    }


def _run_until_exit(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a service to its end; it must stop by itself well before the deadline."""
    return subprocess.run(  # noqa: S603
        [str(BIN / command[0]), *command[1:]],
        env={"PATH": str(BIN), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("command", "refusal", "setting"),
    [
        (["api-service"], "password", "KAFKA_SASL_PASSWORD"),
        (["forwarder-service"], "password", "KAFKA_SASL_PASSWORD"),
        (["forwarder-service", "replay", "--dry-run"], "password", "KAFKA_SASL_PASSWORD"),
        (["api-service"], "ca", "KAFKA_SSL_CA_FILE"),
        (["forwarder-service"], "ca", "KAFKA_SSL_CA_FILE"),
    ],
)
def test_a_refused_client_exits_2_naming_the_setting(
    secure_kafka: SecureKafka, tmp_path: Path, command: list[str], refusal: str, setting: str
) -> None:
    if refusal == "password":
        env = secure_kafka.env(KAFKA_SASL_PASSWORD=WRONG_PASSWORD)
    else:
        other_ca, _ = make_ca(tmp_path, "other-ca")
        env = secure_kafka.env(KAFKA_SSL_CA_FILE=str(other_ca))
    env |= _api_env(free_port()) | {
        "FORWARDER_ADMIN_HOST": "127.0.0.1",
        "FORWARDER_ADMIN_PORT": str(free_port()),
    }

    result = _run_until_exit(command, env)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"Kafka refused this client: {setting}: " in result.stderr
    assert WRONG_PASSWORD not in output
    assert "retrying" not in output
