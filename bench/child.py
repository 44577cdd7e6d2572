"""Running one measurement in a process of its own, so its CPU and memory are its own."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

__all__ = ["run_child"]


def run_child(module: str, *args: str, timeout_s: float) -> Any:
    """Run ``python -m module *args`` with this interpreter; the JSON its last line printed.

    Raises ``CalledProcessError`` if it fails, ``TimeoutExpired`` past ``timeout_s``.
    """
    output = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", module, *args],
        check=True,
        capture_output=True,
        timeout=timeout_s,
    )
    return json.loads(output.stdout.decode().strip().splitlines()[-1])
