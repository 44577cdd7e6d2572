"""Serving a baseline app the way the API is served, and running one for a benchmark.

The baselines (``bench.bare_asgi``, ``bench.fastapi_min``) run in a process of their own on
uvicorn with the API's settings (``api_service.main.public_config``): httptools, uvloop, one
worker, no access log, no server header, no proxy headers. What they lack is what the API adds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
import uvloop
from starlette.types import ASGIApp


def serve(app: ASGIApp, argv: list[str] | None = None) -> None:
    """Serve ``app`` on ``127.0.0.1:--port`` until terminated."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        http="httptools",  # named, so a missing httptools fails rather than falls back to h11
        loop="none",  # the loop is uvloop's, below, as the API's main does
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
    )
    uvloop.run(uvicorn.Server(config).serve())


def status(url: str) -> int:
    """The HTTP status a GET of ``url`` answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@contextmanager
def served(
    args: list[str],
    ready_url: str,
    *,
    env: dict[str, str] | None = None,
    ready: Callable[[int], bool] = lambda _status: True,
    timeout_s: float = 60.0,
) -> Iterator[int]:
    """A server process started from ``args``, once a GET of ``ready_url`` answers a status
    that ``ready`` accepts (any, by default); its process id. Terminated on exit."""
    process = subprocess.Popen(args, env=env)  # noqa: S603 - our own interpreter and modules
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if ready(status(ready_url)):
                    break
            except OSError:
                pass
            if process.poll() is not None:
                raise SystemExit(f"{args[-1]} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{ready_url} was not ready within {timeout_s:.0f} s")
            time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running(module: str, port: int) -> Iterator[tuple[str, int]]:
    """The baseline ``python -m module`` serving on ``port``; its base URL and process id."""
    base_url = f"http://127.0.0.1:{port}"
    with served([sys.executable, "-m", module, "--port", str(port)], base_url + "/") as pid:
        yield base_url, pid
