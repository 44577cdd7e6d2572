"""A single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback.

The broker is the official ``org.apache.kafka:kafka_2.13`` artifact and its runtime
dependencies, resolved from Maven Central by ``mvn dependency:copy-dependencies`` (see
``pom.xml``) into ``.cache/kafka/<version>/lib``; the version is pinned in ``VERSION``.

``scripts/kafka/commands.py`` is the command line (``make kafka-up``/``make kafka-down``);
``scripts/kafka/cluster.py`` runs several of these nodes as one cluster.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from scripts.kafka.properties import NodeAddress, node_properties

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


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) until the block ends.

    ``up`` and ``down`` of one broker or cluster take it, so two of them never act on a
    half-started broker at once, and so does the first fetch of the jars; the kernel releases
    it if the holder dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lib_dir() -> Path:
    """The broker's jars, resolved from Maven Central on first use.

    The nodes of a cluster start side by side, each wanting the jars: one fetches while the
    others wait on the lock, then find the fetch complete.
    """
    lib = CACHE_DIR / "lib"
    if (CACHE_DIR / "complete").exists():
        return lib
    with locked(CACHE_DIR / "fetch.lock"):
        if (CACHE_DIR / "complete").exists():
            return lib
        return _fetch(lib)


def _fetch(lib: Path) -> Path:
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

    ``options`` are the client's TLS/SASL options. Runs on a thread of its own, so callers
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
    """One node process with its own data folder, config, log and pid file.

        Alone (the default) it is a single-node cluster with a controller port of its own; in a
        :class:`~scripts.kafka.cluster.KafkaCluster` it gets its ``node`` address and the
        ``voters`` of the quorum. ``extra_properties`` go to :func:`node_properties`, and
    ``format_args`` to ``kafka-storage format`` (a SASL_SSL listener needs both: see
    ``scripts/kafka/security.py``).
    """

    def __init__(
        self,
        workdir: Path,
        bootstrap: str,
        *,
        heap: str = DEFAULT_HEAP,
        node: NodeAddress | None = None,
        voters: list[NodeAddress] | None = None,
        extra_properties: Mapping[str, str] | None = None,
        format_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.bootstrap = bootstrap
        self.host, self.port = split_address(bootstrap)
        self.heap = heap
        self.node = node
        self.voters = voters
        self.extra_properties = extra_properties
        self.format_args = tuple(format_args)  # e.g. --add-scram (scripts/kafka/security.py)
        self.log_path = workdir / "server.log"
        self.pid_path = workdir / "broker.pid"
        self.lock_path = workdir / "up.lock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        """The broker's server.properties."""
        return self.workdir / "server.properties"

    def _write_config(self) -> None:
        node = self.node or NodeAddress(1, self.host, self.port, free_port())
        properties = node_properties(
            node, self.voters or [node], self.workdir / "data", extra=self.extra_properties
        )
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
        try:
            self._run_storage_format(cluster_id)
        except BaseException:
            # The config file is what says "formatted" to the next start: without this, a start
            # after a failed format skipped formatting and the broker died on its empty folder.
            self.config_path.unlink(missing_ok=True)
            raise

    def _run_storage_format(self, cluster_id: str) -> None:
        # One argument, `--cluster-id=<id>`: a random id may start with "-", and as a separate
        # argument it would be parsed as an option.
        command = self._java(
            "kafka.tools.StorageTool",
            "format", f"--cluster-id={cluster_id}",
            "-c", str(self.config_path), "--ignore-formatted", *self.format_args,
        )  # fmt: skip
        result = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
        if result.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the broker (formatting storage first if needed) and wait until it answers."""
        self.launch()
        self.wait_until_answering(timeout_s)

    def launch(self) -> None:
        """Start the process (formatting storage first if needed) without waiting for it.

        After a crash the data folder is kept: Kafka recovers its log on start.
        """
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

    def wait_until_answering(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until the launched broker answers; stop it and raise if it exits or stays mute."""
        if self._process is None:
            raise BrokerError("launch() the broker before waiting for it")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"the broker exited ({self._process.returncode}):\n{self.tail()}")
            if answers(self.bootstrap, timeout_s=2.0):
                return
            time.sleep(0.25)
        self.stop()
        raise BrokerError(f"the broker did not answer within {timeout_s:.0f} s:\n{self.tail()}")

    def pid(self) -> int | None:
        """The broker's pid if it is running."""
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def stop(self, timeout_s: float = 30.0, signum: int = signal.SIGTERM) -> None:
        """Stop the broker: ``signum`` (SIGTERM: a clean shutdown; SIGKILL: a crash), then
        SIGKILL after ``timeout_s``; return once the process is gone."""
        pid = self.pid()
        if pid is not None:
            _terminate(pid, timeout_s, signum)
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


def _terminate(pid: int, timeout_s: float, signum: int) -> None:
    try:
        os.killpg(pid, signum)
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


def broker_at(run_dir: Path, bootstrap: str) -> KafkaBroker:
    """The single broker at ``bootstrap`` with its state under ``run_dir``."""
    return KafkaBroker(state_dir(run_dir, split_address(bootstrap)[1]), bootstrap)
