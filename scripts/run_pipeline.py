"""``make run``: the whole pipeline on this machine, on embedded defaults.

Starts (or reuses) the local Kafka broker, creates the topics, starts the local collector, the
API (with a development API key it prints) and the forwarder, prints the URLs and a curl that
posts an event, then shows each event as it reaches the collector. Ctrl-C stops everything it
started, in reverse order, each with SIGTERM so it drains cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import orjson
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAlreadyExistsError

from scripts.kafka.broker import RUN_DIR, BrokerError, KafkaBroker, answers, broker_at
from scripts.kafka.security import client_options_from_env
from scripts.kafka.topics import broker_count, new_topic

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
BIN: Final = Path(sys.executable).parent
LOG_DIR: Final = REPO_ROOT / ".run" / "logs"
STOP_TIMEOUT_S: Final = 40.0


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


class Pipeline:
    """The processes ``make run`` owns."""

    def __init__(self) -> None:
        self.bootstrap = _env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
        self.api_port = int(_env("API_PORT", "8080"))
        self.api_admin_port = int(_env("API_ADMIN_PORT", "9464"))
        self.collector_port = int(_env("COLLECTOR_PORT", "9090"))
        self.forwarder_admin_port = int(_env("FORWARDER_ADMIN_PORT", "9465"))
        self.api_key = os.environ.get("API_KEYS", "").split(",")[0] or (
            "dev-" + secrets.token_urlsafe(18)
        )
        self.topics = {
            "EVENTS_TOPIC": _env("EVENTS_TOPIC", "events"),
            "BAD_EVENTS_TOPIC": _env("BAD_EVENTS_TOPIC", "events_bad"),
            "DLQ_TOPIC": _env("DLQ_TOPIC", "events_dlq"),
        }
        self.broker: KafkaBroker | None = None
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    @property
    def collector_url(self) -> str:
        """The local collector's base URL."""
        return f"http://127.0.0.1:{self.collector_port}"

    def start_broker(self) -> None:
        """Reuse a broker that answers; else start the project's own (stopped on exit)."""
        with _quiet_kafka_client():
            running = answers(self.bootstrap, options=client_options_from_env())
        if running:
            print(f"  kafka      {self.bootstrap} (already running, left running on exit)")
            return
        broker = broker_at(RUN_DIR, self.bootstrap.split(",")[0])
        if broker.pid() is not None:
            broker.stop()
        print(f"  kafka      starting at {self.bootstrap} ...", flush=True)
        with _quiet_kafka_client():
            broker.start()
        self.broker = broker
        print(f"  kafka      {self.bootstrap} (log: {broker.log_path})")

    def create_topics(self) -> None:
        """Create the three topics if they are missing (events with 3 partitions)."""
        asyncio.run(_create_topics(self.bootstrap, self.topics))

    def spawn(self, name: str, command: str, env: Mapping[str, str]) -> None:
        """Start one service with its output in ``.run/logs/<name>.log``."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = (LOG_DIR / f"{name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603
            [str(BIN / command)],
            env={**os.environ, **self.topics, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to us; we stop each child in order
        )
        log.close()
        self.processes.append((name, process))

    def wait_healthy(self, name: str, url: str, timeout_s: float = 60.0) -> None:
        """Wait until ``url`` answers 200, or fail with the end of the service's log."""
        deadline = time.monotonic() + timeout_s
        process = dict(self.processes)[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{_tail(name)}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url, timeout=2) as answer,  # noqa: S310
            ):
                if answer.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not become ready within {timeout_s:.0f} s:\n{_tail(name)}")

    def start_services(self) -> None:
        """The collector, the API and the forwarder, each waited for."""
        self.spawn("collector", "local-collector", {"COLLECTOR_PORT": str(self.collector_port)})
        self.wait_healthy("collector", f"{self.collector_url}/healthz")
        print(f"  collector  {self.collector_url}  (events: {self.collector_url}/micro/good)")
        api_env = {
            "API_PORT": str(self.api_port),
            "API_ADMIN_PORT": str(self.api_admin_port),
            "API_KEYS": self.api_key,
        }
        self.spawn("api", "api-service", api_env)
        self.wait_healthy("api", f"http://127.0.0.1:{self.api_port}/readyz")
        print(f"  api        http://127.0.0.1:{self.api_port}  (docs: /docs)")
        # Iglu Central is bundled, so the trackers' standard entities and events are checked
        # like any other; unknown schemas are refused unless API_ALLOW_UNKNOWN_SCHEMAS says so.
        if os.environ.get("API_ALLOW_UNKNOWN_SCHEMAS", "").lower() in {"1", "true", "yes", "on"}:
            print("             unknown Iglu schemas accepted (API_ALLOW_UNKNOWN_SCHEMAS)")
        print(f"             metrics http://127.0.0.1:{self.api_admin_port}/metrics")
        self.spawn(
            "forwarder",
            "forwarder-service",
            {
                "COLLECTOR_URL": self.collector_url,
                "FORWARDER_ADMIN_PORT": str(self.forwarder_admin_port),
            },
        )
        self.wait_healthy("forwarder", f"http://127.0.0.1:{self.forwarder_admin_port}/readyz")
        print(f"  forwarder  metrics http://127.0.0.1:{self.forwarder_admin_port}/metrics")
        print(f"  logs       {LOG_DIR}/")

    def stop(self) -> None:
        """SIGTERM every service (newest first), then the broker if this run started it."""
        # A terminal's Ctrl-C reaches make and us both, and make passes it on again: once
        # stopping has begun, further interrupts must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, process in reversed(self.processes):
            if process.poll() is None:
                print(f"  stopping {name} ...", flush=True)
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        if self.broker is not None:
            print("  stopping kafka ...", flush=True)
            self.broker.stop()
            self.broker = None

    def curl(self) -> str:
        """A ready-to-paste command that posts one page view."""
        event = {
            "event_type": "page_view",
            "app_id": "demo",
            "page": {"url": "https://example.com/pricing", "title": "Pricing"},
            "subject": {"user_id": "user-42"},
        }
        return (
            f"curl -sS -X POST http://127.0.0.1:{self.api_port}/v1/events \\\n"
            f"  -H 'Authorization: Bearer {self.api_key}' -H 'Content-Type: application/json' \\\n"
            f"  -d {shlex.quote(orjson.dumps(event).decode())}"
        )

    def follow_collector(self) -> None:
        """Print each event the collector receives, until interrupted or a service dies."""
        seen = 0
        while True:
            for name, process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}):\n{_tail(name)}")
            events = _get_json(f"{self.collector_url}/micro/good?offset={seen}&limit=100")
            for event in events if isinstance(events, list) else []:
                seen += 1
                print(f"  collector <- {_describe(event)}", flush=True)
            time.sleep(0.5)


async def _create_topics(bootstrap: str, topics: Mapping[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options_from_env())
    await admin.start()
    try:
        brokers = await broker_count(admin)
        for variable, name in topics.items():
            partitions = 3 if variable == "EVENTS_TOPIC" else 1
            with contextlib.suppress(TopicAlreadyExistsError):
                topic = new_topic(name, partitions, brokers=brokers)
                response = await admin.create_topics([topic])
                _raise_unless_exists(response)
    finally:
        await admin.close()


def _raise_unless_exists(response: Any) -> None:
    for topic_errors in getattr(response, "topic_errors", []):
        code = topic_errors[1]
        if code not in (0, TopicAlreadyExistsError.errno):
            raise RuntimeError(f"could not create topic {topic_errors[0]}: error {code}")


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310
            return orjson.loads(answer.read())
    except (OSError, urllib.error.URLError, orjson.JSONDecodeError):
        return None


def _describe(event: Any) -> str:
    if not isinstance(event, dict):
        return str(event)
    payload = event.get("event", event)
    fields = payload if isinstance(payload, dict) else {}
    parts = [f"e={fields.get('e')}", f"eid={fields.get('eid')}"]
    if fields.get("aid"):
        parts.append(f"aid={fields['aid']}")
    if fields.get("url"):
        parts.append(f"url={fields['url']}")
    return " ".join(parts)


def _tail(name: str, lines: int = 30) -> str:
    path = LOG_DIR / f"{name}.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def _quiet_kafka_client() -> Iterator[None]:
    """Silence aiokafka while a broker is awaited: each refused probe logs an error
    ("Unable connect to ...", printed by logging's last-resort handler, about ten times while
    the broker starts); we say once that it is starting instead.
    """
    client_logger = logging.getLogger("aiokafka")
    level = client_logger.level
    client_logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        client_logger.setLevel(level)


@contextlib.contextmanager
def _interrupts_as_keyboard() -> Iterator[None]:
    # `make` may deliver SIGTERM instead of SIGINT; both mean "stop everything cleanly". SIGINT
    # is set too: started in the background by a shell without job control, it arrives ignored
    # and Python would then not turn it into KeyboardInterrupt.
    previous = {
        signum: signal.signal(signum, signal.default_int_handler)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main() -> int:
    """Run the pipeline until Ctrl-C."""
    pipeline = Pipeline()
    print("starting the tracking pipeline:")
    with _interrupts_as_keyboard():
        try:
            pipeline.start_broker()
            pipeline.create_topics()
            pipeline.start_services()
            print(f"\ndevelopment API key: {pipeline.api_key}\n")
            print("post an event:\n")
            print(pipeline.curl())
            print("\nevents arriving at the collector appear below; Ctrl-C stops everything.\n")
            pipeline.follow_collector()
        except KeyboardInterrupt:
            print("\nstopping ...")
        except (BrokerError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            pipeline.stop()
            return 1
        finally:
            pipeline.stop()
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
