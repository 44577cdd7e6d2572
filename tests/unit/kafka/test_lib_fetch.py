"""The broker's jars are fetched once, however many nodes ask at once; a failed format is redone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scripts.kafka import broker


def test_nodes_starting_together_fetch_the_jars_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker, "CACHE_DIR", tmp_path)
    fetches: list[Path] = []
    all_asking = threading.Barrier(3)

    def fetch(lib: Path) -> Path:
        fetches.append(lib)
        lib.mkdir()
        (tmp_path / "complete").write_text("test\n")
        return lib

    monkeypatch.setattr(broker, "_fetch", fetch)

    def ask() -> Path:
        all_asking.wait(timeout=10)
        return broker.lib_dir()

    with ThreadPoolExecutor(max_workers=3) as pool:
        libs = list(pool.map(lambda _: ask(), range(3)))

    assert fetches == [tmp_path / "lib"]
    assert libs == [tmp_path / "lib"] * 3


def test_a_failed_format_leaves_the_broker_unformatted_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_jars() -> Path:
        raise broker.BrokerError("mvn could not fetch Kafka")

    monkeypatch.setattr(broker, "lib_dir", no_jars)
    node = broker.KafkaBroker(tmp_path, "127.0.0.1:19999")

    with pytest.raises(broker.BrokerError):
        node.format()

    # The next start formats again instead of launching a broker on an empty data folder.
    assert not node.config_path.exists()
