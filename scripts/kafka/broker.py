"""A single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback.

The broker is the official ``org.apache.kafka:kafka_2.13`` artifact and its runtime
dependencies, resolved from Maven Central by ``mvn dependency:copy-dependencies`` (see
``pom.xml``) into ``.cache/kafka/<version>/lib``; the version is pinned in ``VERSION``.
``make kafka-up``/``make kafka-down`` and the test suite both use this module.

Usage: ``python -m scripts.kafka.broker up|down|status`` (``KAFKA_BOOTSTRAP_SERVERS`` picks the
address; default ``127.0.0.1:9092``; each broker's state lives in ``.run/kafka/<port>``). With
``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` the listener is ``SASL_SSL`` (see ``security.py``): a
throwaway CA and SCRAM users, and the client settings in ``<state>/security/client.env``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from scripts.kafka.security import BrokerSecurity

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
HERE: Final = Path(__file__).resolve().parent
VERSION: Final = (HERE / "VERSION").read_text().strip()
CACHE_DIR: Final = REPO_ROOT / ".cache" / "kafka" / VERSION
RUN_DIR: Final = REPO_ROOT / ".run" / "kafka"
DEFAULT_BOOTSTRAP: Final = "127.0.0.1:9092"
# Two cores shared with the services and the tests: a small heap, and few threads.
DEFAULT_HEAP: Final = os.environ.get("KAFKA_HEAP", "512m")
START_TIMEOUT_S: Final = 90.0

_LOG4J2: Final = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class BrokerError(RuntimeError):
    """The broker could not be installed, started or reached."""


def lib_dir() -> Path:
    """The broker's jars, resolved from Maven Central on first use."""
    lib = CACHE_DIR / "lib"
    if (CACHE_DIR / "complete").exists():
        return lib
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is needed to fetch Apache Kafka from Maven Central")
    if shutil.which("java") is None:
        raise BrokerError("Java 17+ (java) is needed to run the Apache Kafka broker")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    print(f"fetching Apache Kafka {VERSION} from Maven Central into {lib} ...", flush=True)
    # Resolve into a temporary folder and rename, so an interrupted fetch is never half-used.
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=CACHE_DIR))
    command = [
        "mvn", "-q", "-B", "-f", str(HERE / "pom.xml"),
        "dependency:copy-dependencies", f"-Dkafka.version={VERSION}",
        "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    result = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerError(f"mvn could not fetch Kafka {VERSION}:\n{result.stdout}{result.stderr}")
    if lib.exists():
        shutil.rmtree(lib)
    staging.rename(lib)
    (CACHE_DIR / "complete").write_text(VERSION + "\n")
    return lib


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` as a pair."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BrokerError(f"KAFKA_BOOTSTRAP_SERVERS: {address!r} is not host:port")
    return host, int(port)


def answers(
    bootstrap: str, timeout_s: float = 3.0, options: Mapping[str, Any] | None = None
) -> bool:
    """True if a Kafka broker at ``bootstrap`` answers a metadata request.

    ``options`` are the client's security options. Runs on a thread of its own, so callers
    inside a running event loop (tests) can use it.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _answers(bootstrap, timeout_s, options or {})).result()


async def _answers(bootstrap: str, timeout_s: float, options: Mapping[str, Any]) -> bool:
    # Imported here so `down` and `status` work without the Python packages installed.
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415
    from aiokafka.errors import KafkaError  # noqa: PLC0415

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **options
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            await admin.describe_cluster()
    except (KafkaError, TimeoutError, OSError):
        return False
    else:
        return True
    finally:
        await admin.close()


class KafkaBroker:
    """One broker process with its own data folder, config, log and pid file."""

    def __init__(
        self,
        workdir: Path,
        bootstrap: str,
        *,
        heap: str = DEFAULT_HEAP,
        security: BrokerSecurity | None = None,
    ) -> None:
        self.workdir = workdir
        self.security = security
        self.bootstrap = bootstrap
        self.host, self.port = split_address(bootstrap)
        self.heap = heap
        self.log_path = workdir / "server.log"
        self.pid_path = workdir / "broker.pid"
        self.lock_path = workdir / "up.lock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        """The broker's server.properties."""
        return self.workdir / "server.properties"

    def _write_config(self) -> None:
        controller_port = free_port()
        data = self.workdir / "data"
        name = "PLAINTEXT" if self.security is None else self.security.listener_name
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"{name}://{self.host}:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"{name}://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": name,
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{name}:{name}",
            "log.dirs": str(data),
            "num.partitions": "1",
            "offsets.topic.num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Tests join groups constantly; the default 3 s delay would slow every one of them.
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "2",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
        }
        if self.security is not None:
            properties.update(self.security.listener_properties())
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in properties.items()]
        self.config_path.write_text("\n".join(lines) + "\n")
        (self.workdir / "log4j2.properties").write_text(_LOG4J2)

    def _java(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which("java") or "java"
        return [
            java, f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp", f"{lib_dir()}/*", main_class, *args,
        ]  # fmt: skip

    def format(self, cluster_id: str | None = None) -> None:
        """Write a fresh config and format KRaft storage (done once per data folder)."""
        self._write_config()
        if cluster_id is None:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # One argument, `--cluster-id=<id>`: a random id may start with "-", and as a separate
        # argument it would be parsed as an option.
        command = self._java(
            "kafka.tools.StorageTool",
            "format", f"--cluster-id={cluster_id}",
            "-c", str(self.config_path), "--ignore-formatted",
            *(self.security.format_args() if self.security is not None else ()),
        )  # fmt: skip
        result = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
        if result.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the broker (formatting storage first if needed) and wait until it answers."""
        if not self.config_path.exists():
            self.format()
        with self.log_path.open("ab") as log:
            # Its own session: Ctrl-C in a terminal reaches the broker only through `stop`.
            self._process = subprocess.Popen(  # noqa: S603
                self._java("kafka.Kafka", str(self.config_path)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._process.pid}\n")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"the broker exited ({self._process.returncode}):\n{self.tail()}")
            if answers(self.bootstrap, timeout_s=2.0, options=self.client_options()):
                return
            time.sleep(0.25)
        self.stop()
        raise BrokerError(f"the broker did not answer within {timeout_s:.0f} s:\n{self.tail()}")

    def client_options(self) -> dict[str, Any]:
        """The security options a client of this broker needs (as its admin user)."""
        return {} if self.security is None else self.security.admin_client_options()

    def pid(self) -> int | None:
        """The broker's pid if it is running."""
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the broker: SIGTERM (a clean shutdown), then SIGKILL after ``timeout_s``."""
        pid = self.pid()
        if pid is not None:
            _terminate(pid, timeout_s)
        if self._process is not None:
            self._process.wait()
            self._process = None
        self.pid_path.unlink(missing_ok=True)

    def tail(self, lines: int = 40) -> str:
        """The end of the broker's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; /proc tells the truth.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _terminate(pid: int, timeout_s: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with_group = True
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        with_group = False
    if with_group:
        while _alive(pid):
            time.sleep(0.05)


def state_dir(run_dir: Path, port: int) -> Path:
    """The folder of the broker on ``port``: its data, config, log, pid file and lock.

    One per port, so brokers on different ports never share (and never stop) each other.
    """
    return run_dir / str(port)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) until the block ends.

    ``up`` and ``down`` of one broker take it, so two of them never act on a half-started
    broker at once; the kernel releases it if the holder dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _bootstrap_from_env() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP).split(",")[0].strip()


def _broker_at(run_dir: Path, bootstrap: str) -> KafkaBroker:
    host, port = split_address(bootstrap)
    workdir = state_dir(run_dir, port)
    security = None
    if os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper() == "SASL_SSL":
        security = BrokerSecurity.load_or_create(
            workdir / "security", hostnames=[host, "localhost"]
        )
    return KafkaBroker(workdir, bootstrap, security=security)


def _wait_for_answer(broker: KafkaBroker, timeout_s: float) -> bool:
    """Wait for a broker of ours that is alive but not answering yet (it may be starting)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and broker.pid() is not None:
        if answers(broker.bootstrap, timeout_s=2.0, options=broker.client_options()):
            return True
        time.sleep(0.25)
    return False


def up(run_dir: Path = RUN_DIR) -> int:
    """``make kafka-up``: start the project's broker unless one already answers.

    Under the broker's lock: a second ``up`` waits for the first to finish, and a broker of
    ours that is alive but silent (started by an ``up`` that was interrupted) gets the whole
    start-up time to answer before it is taken for hung and replaced.
    """
    broker = _broker_at(run_dir, _bootstrap_from_env())
    with locked(broker.lock_path):
        if answers(broker.bootstrap, options=broker.client_options()):
            owner = "ours" if broker.pid() is not None else "not started by this project"
            print(f"Kafka is already up at {broker.bootstrap} ({owner})")
            return 0
        if broker.pid() is not None:
            if _wait_for_answer(broker, START_TIMEOUT_S):
                print(f"Kafka is up at {broker.bootstrap} (it was starting)")
                return 0
            broker.stop()  # a broker of ours that no longer answers
        print(f"starting Apache Kafka {VERSION} (KRaft) at {broker.bootstrap} ...", flush=True)
        try:
            broker.start()
        except BrokerError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(f"Kafka is up at {broker.bootstrap} (log: {broker.log_path})")
    if broker.security is not None:
        print(f"SASL_SSL: the services' settings are in {broker.security.client_env_file}")
    return 0


def down(run_dir: Path = RUN_DIR) -> int:
    """``make kafka-down``: stop the project's brokers, leaving no process behind.

    With ``KAFKA_BOOTSTRAP_SERVERS`` set, only the broker on that port; otherwise every broker
    this checkout started.
    """
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        brokers = [_broker_at(run_dir, _bootstrap_from_env())]
    else:
        brokers = [
            KafkaBroker(folder, f"127.0.0.1:{folder.name}")
            for folder in sorted(run_dir.glob("*"))
            if folder.name.isdigit()
        ]
    stopped = 0
    for broker in brokers:
        with locked(broker.lock_path):
            if broker.pid() is None:
                broker.pid_path.unlink(missing_ok=True)
                continue
            broker.stop()
            stopped += 1
            print(f"Kafka stopped at {broker.bootstrap}")
    if stopped == 0:
        print("Kafka is not running (no broker started by this project)")
    return 0


def status() -> int:
    """Exit 0 if the broker answers."""
    bootstrap = _bootstrap_from_env()
    if answers(bootstrap, options=_broker_at(RUN_DIR, bootstrap).client_options()):
        print(f"Kafka is up at {bootstrap}")
        return 0
    print(f"Kafka is not answering at {bootstrap}")
    return 1


def main(argv: list[str] | None = None) -> int:
    """Command line: ``up``, ``down``, ``status`` or ``fetch``."""
    # Connection refusals while the broker boots are expected; aiokafka logs each one.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(prog="python -m scripts.kafka.broker")
    parser.add_argument("command", choices=["up", "down", "status", "fetch"])
    parser.add_argument(
        "--run-dir", type=Path, default=RUN_DIR, help="where brokers keep their state"
    )
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(lib_dir())
        return 0
    if args.command == "status":
        return status()
    return {"up": up, "down": down}[args.command](args.run_dir)


if __name__ == "__main__":
    sys.exit(main())
