"""``KAFKA_SECURITY_PROTOCOL=SASL_SSL make kafka-up``: a SASL_SSL listener and its client.env."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.conn import AIOKafkaConnection
from tracking_common.kafka_security import KafkaSecuritySettings, check_access

from scripts.kafka.broker import free_port
from scripts.kafka.security import SECURE_PORT_OFFSET

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


def _ports() -> int:
    """A free port whose SASL_SSL companion (1000 above) is free too."""
    while True:
        port = free_port()
        if port + SECURE_PORT_OFFSET > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + SECURE_PORT_OFFSET))
            except OSError:
                continue
        return port


def _run(run_dir: Path, verb: str, port: int) -> tuple[int, str]:
    env = {
        **os.environ,
        "KAFKA_HEAP": "256m",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "scripts.kafka.commands", "--run-dir", str(run_dir), verb],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def secured_up(tmp_path: Path) -> Iterator[tuple[Path, int, str]]:
    """A broker started by the command with SASL_SSL; stopped by the command at teardown."""
    port = _ports()
    code, output = _run(tmp_path, "up", port)
    try:
        assert code == 0, output
        yield tmp_path, port, output
    finally:
        _run(tmp_path, "down", port)


async def test_kafka_up_with_sasl_ssl_writes_settings_the_services_connect_with(
    secured_up: tuple[Path, int, str],
) -> None:
    run_dir, port, output = secured_up
    env_file = run_dir / str(port) / "security" / "client.env"
    assert f"SASL_SSL at localhost:{port + SECURE_PORT_OFFSET}" in output
    assert str(env_file) in output
    variables = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert variables["KAFKA_BOOTSTRAP_SERVERS"] == f"localhost:{port + SECURE_PORT_OFFSET}"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert variables["KAFKA_SASL_PASSWORD"] not in output

    settings = KafkaSecuritySettings.model_validate(
        {
            name.lower(): value
            for name, value in variables.items()
            if name != "KAFKA_BOOTSTRAP_SERVERS"
        }
    )
    connection = functools.partial(AIOKafkaConnection, **settings.client_options())
    accepted = await check_access(settings, [variables["KAFKA_BOOTSTRAP_SERVERS"]], connection)

    assert accepted == variables["KAFKA_BOOTSTRAP_SERVERS"]
