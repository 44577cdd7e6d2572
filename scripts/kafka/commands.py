"""The command line of the project's Kafka: ``python -m scripts.kafka.commands up|down|status``.

``make kafka-up`` starts one broker at ``KAFKA_BOOTSTRAP_SERVERS`` (default ``127.0.0.1:9092``);
with ``KAFKA_BROKERS=3`` it starts a three-node KRaft cluster on that port and the next two, and
prints the bootstrap list. State lives in ``.run/kafka/<port>`` (a broker) or
``.run/kafka/cluster-<port>`` (a cluster), so brokers on different ports never touch each other.
``make kafka-down`` stops every broker and cluster of this checkout, or only those at
``KAFKA_BOOTSTRAP_SERVERS`` when it is set.

With ``KAFKA_SECURITY_PROTOCOL=SASL_SSL``, every node also gets a ``SASL_SSL`` listener at
``localhost``, 1000 ports above its PLAINTEXT one (``scripts/kafka/security.py``: a throwaway CA
and SCRAM users, kept in the state folder); the services' settings are written to
``<state>/security/client.env``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from scripts.kafka.broker import (
    DEFAULT_BOOTSTRAP,
    RUN_DIR,
    START_TIMEOUT_S,
    VERSION,
    BrokerError,
    KafkaBroker,
    answers,
    broker_at,
    lib_dir,
    locked,
    split_address,
)
from scripts.kafka.cluster import KafkaCluster
from scripts.kafka.security import SECURE_HOST, SECURE_PORT_OFFSET, BrokerSecurity

__all__ = ["down", "locked", "main", "status", "up"]


def _bootstrap_from_env() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP).split(",")[0].strip()


def _brokers_from_env() -> int:
    value = os.environ.get("KAFKA_BROKERS", "1").strip()
    if not value.isdigit() or int(value) < 1:
        raise BrokerError(f"KAFKA_BROKERS: {value!r} is not a number of brokers (1, 3, ...)")
    return int(value)


def _cluster_at(run_dir: Path, port: int, size: int) -> KafkaCluster:
    ports = [port + index for index in range(size)]
    cluster = KafkaCluster.open(run_dir / f"cluster-{port}", ports)
    security = _security(cluster.workdir, [node.port for node in cluster.layout.nodes])
    if security is None:
        return cluster
    return KafkaCluster(
        cluster.workdir,
        cluster.layout,
        extra_properties=lambda node: security.listener_properties(node.port + SECURE_PORT_OFFSET),
        format_args=security.format_args(),
    )


def _single_at(run_dir: Path, bootstrap: str) -> KafkaBroker:
    broker = broker_at(run_dir, bootstrap)
    security = _security(broker.workdir, [broker.port])
    if security is None:
        return broker
    return KafkaBroker(
        broker.workdir,
        broker.bootstrap,
        extra_properties=security.listener_properties(broker.port + SECURE_PORT_OFFSET),
        format_args=security.format_args(),
    )


def _security(workdir: Path, ports: list[int]) -> BrokerSecurity | None:
    """The SASL_SSL listener's CA and users if ``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` asks for it."""
    if os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").strip().upper() != "SASL_SSL":
        return None
    secured = ",".join(f"{SECURE_HOST}:{port + SECURE_PORT_OFFSET}" for port in ports)
    security = BrokerSecurity.load_or_create(workdir / "security", bootstrap=secured)
    print(f"SASL_SSL at {secured}: the services' settings are in {security.client_env_file}")
    return security


def _wait_for_answer(broker: KafkaBroker, timeout_s: float) -> bool:
    """Wait for a broker of ours that is alive but not answering yet (it may be starting)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and broker.pid() is not None:
        if answers(broker.bootstrap, timeout_s=2.0):
            return True
        time.sleep(0.25)
    return False


def _settle(broker: KafkaBroker) -> bool:
    """True if ``broker`` (ours, alive) answers within the start-up time; else stop it."""
    if _wait_for_answer(broker, START_TIMEOUT_S):
        return True
    broker.stop()  # a broker of ours that no longer answers
    return False


def up(run_dir: Path = RUN_DIR) -> int:
    """``make kafka-up``: start the project's broker (or cluster) unless it already answers.

    Under a lock: a second ``up`` waits for the first to finish, and a broker of ours that is
    alive but silent (started by an ``up`` that was interrupted) gets the whole start-up time
    to answer before it is taken for hung and replaced.
    """
    try:
        size = _brokers_from_env()
        bootstrap = _bootstrap_from_env()
        if size > 1:
            return _cluster_up(_cluster_at(run_dir, split_address(bootstrap)[1], size))
        return _broker_up(_single_at(run_dir, bootstrap))
    except BrokerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _broker_up(broker: KafkaBroker) -> int:
    with locked(broker.lock_path):
        if answers(broker.bootstrap):
            owner = "ours" if broker.pid() is not None else "not started by this project"
            print(f"Kafka is already up at {broker.bootstrap} ({owner})")
            return 0
        if broker.pid() is not None and _settle(broker):
            print(f"Kafka is up at {broker.bootstrap} (it was starting)")
            return 0
        print(f"starting Apache Kafka {VERSION} (KRaft) at {broker.bootstrap} ...", flush=True)
        broker.start()
    print(f"Kafka is up at {broker.bootstrap} (log: {broker.log_path})")
    return 0


def _cluster_up(cluster: KafkaCluster) -> int:
    with locked(cluster.lock_path):
        nodes = cluster.nodes.values()
        if all(node.pid() is not None and answers(node.bootstrap) for node in nodes):
            print(f"Kafka is already up: {cluster.bootstrap}")
            return 0
        for node in nodes:
            if node.pid() is not None:
                _settle(node)
        size = len(cluster.nodes)
        print(f"starting a {size}-node Apache Kafka {VERSION} cluster (KRaft) ...", flush=True)
        cluster.start()
    print(f"Kafka is up (logs: {cluster.workdir}/node-*/server.log); bootstrap list:")
    print(cluster.bootstrap)
    return 0


def down(run_dir: Path = RUN_DIR) -> int:
    """``make kafka-down``: stop the project's brokers and clusters, leaving no process behind.

    With ``KAFKA_BOOTSTRAP_SERVERS`` set, only those on that port; otherwise all of them.
    """
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        port = split_address(_bootstrap_from_env())[1]
        folders = [run_dir / str(port), run_dir / f"cluster-{port}"]
    else:
        folders = sorted(run_dir.glob("*"))
    stopped = 0
    for folder in folders:
        if folder.name.isdigit():
            broker = KafkaBroker(folder, f"127.0.0.1:{folder.name}")
            with locked(broker.lock_path):
                if broker.pid() is not None:
                    broker.stop()
                    stopped += 1
                    print(f"Kafka stopped at {broker.bootstrap}")
                broker.pid_path.unlink(missing_ok=True)
        elif (folder / "cluster.json").exists():
            cluster = KafkaCluster.open(folder, [])
            with locked(cluster.lock_path):
                if cluster.running():
                    cluster.stop()
                    stopped += 1
                    print(f"Kafka cluster stopped: {cluster.bootstrap}")
    if stopped == 0:
        print("Kafka is not running (no broker started by this project)")
    return 0


def status() -> int:
    """Exit 0 if the broker answers."""
    bootstrap = _bootstrap_from_env()
    if answers(bootstrap):
        print(f"Kafka is up at {bootstrap}")
        return 0
    print(f"Kafka is not answering at {bootstrap}")
    return 1


def main(argv: list[str] | None = None) -> int:
    """Command line: ``up``, ``down``, ``status`` or ``fetch``."""
    # Connection refusals while the broker boots are expected; aiokafka logs each one.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(prog="python -m scripts.kafka.commands")
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
