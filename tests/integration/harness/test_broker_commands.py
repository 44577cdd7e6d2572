"""``python -m scripts.kafka.commands up|down`` (the make targets) as separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.kafka.broker import answers, free_port

pytestmark = pytest.mark.kafka

COMMAND_TIMEOUT_S = 150.0


def _command(run_dir: Path, verb: str, bootstrap: str | None) -> subprocess.Popen[str]:
    env = {**os.environ, "KAFKA_HEAP": "256m"}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    if bootstrap is not None:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "scripts.kafka.commands", "--run-dir", str(run_dir), verb],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = process.communicate(timeout=COMMAND_TIMEOUT_S)
    return process.returncode, output


def _run(run_dir: Path, verb: str, bootstrap: str | None = None) -> tuple[int, str]:
    return _finish(_command(run_dir, verb, bootstrap))


def _pid(run_dir: Path, port: int) -> int:
    return int((run_dir / str(port) / "broker.pid").read_text())


def _wait_for(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout_s} s"
        time.sleep(0.05)


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """A state folder of the test's own; every broker in it is stopped at teardown."""
    yield tmp_path
    _run(tmp_path, "down")


@pytest.mark.timeout(300)
def test_an_up_that_overlaps_a_starting_broker_waits_for_it(run_dir: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    first = _command(run_dir, "up", bootstrap)
    # The moment the old code misread: the pid file is written, the port does not answer yet.
    _wait_for(run_dir / str(port) / "broker.pid", timeout_s=60)
    assert not answers(bootstrap, timeout_s=0.5)

    second_code, second_output = _run(run_dir, "up", bootstrap)
    first_code, first_output = _finish(first)

    assert (first_code, second_code) == (0, 0), first_output + second_output
    assert "Kafka is up" in first_output
    assert "already up" in second_output
    assert "starting" not in second_output
    pid = _pid(run_dir, port)
    os.kill(pid, 0)  # the first up's broker is the one running
    assert answers(bootstrap)


@pytest.mark.timeout(300)
def test_brokers_on_different_ports_keep_their_own_state(run_dir: Path) -> None:
    first_port, second_port = free_port(), free_port()
    first, second = f"127.0.0.1:{first_port}", f"127.0.0.1:{second_port}"

    assert _run(run_dir, "up", first)[0] == 0
    first_pid = _pid(run_dir, first_port)
    code, output = _run(run_dir, "up", second)
    assert code == 0, output

    assert _pid(run_dir, first_port) == first_pid  # not stopped and replaced
    assert _pid(run_dir, second_port) != first_pid
    assert answers(first)
    assert answers(second)

    code, output = _run(run_dir, "down", second)
    assert code == 0
    assert f"stopped at {second}" in output
    assert answers(first)  # only the named broker stopped
    assert not answers(second, timeout_s=1.0)

    code, output = _run(run_dir, "down")
    assert code == 0
    assert f"stopped at {first}" in output
    assert not answers(first, timeout_s=1.0)
