"""The broker's jars are fetched once, however many nodes ask for them at the same time."""

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
