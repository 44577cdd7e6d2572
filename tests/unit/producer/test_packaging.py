"""What an install of the API alone (its image) brings for producing."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def dependencies(package_dir: str) -> list[str]:
    """The ``[project] dependencies`` of a workspace member."""
    pyproject = tomllib.loads((ROOT / package_dir / "pyproject.toml").read_text())
    return list(pyproject["project"]["dependencies"])


def test_the_api_package_brings_the_producer_and_its_codecs() -> None:
    # aiokafka 0.14 compresses zstd (the default) and lz4 with cramjam, their extras; without it
    # an api-service-only install (the image) fails on its first produce. The API gets aiokafka
    # through the producer.
    assert "tracking-producer" in dependencies("api_service")
    assert any(
        dependency.startswith("aiokafka[lz4,zstd]") for dependency in dependencies("producer")
    )


def test_the_producer_package_installs_the_command_line() -> None:
    pyproject = tomllib.loads((ROOT / "producer" / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"tracking-produce": "tracking_producer.cli:main"}
