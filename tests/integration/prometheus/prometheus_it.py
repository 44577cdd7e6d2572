"""A real Prometheus (Debian's package) for the tests: scrape config, process, HTTP API.

Every target gets a ``namespace`` label, as Kubernetes service discovery gives them, so one
Prometheus can hold several deployments and the rules' ``by (namespace)`` keeps them apart.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import aiohttp
import yaml

from scripts import check_terraform
from tests.support.services import free_port

__all__ = ["RUNBOOK_BASE_URL", "Prometheus"]

REPO: Final = Path(__file__).resolve().parents[3]
RULES: Final = REPO / "ops" / "prometheus" / "alerts.yaml"
RUNBOOK_BASE_URL: Final = "https://runbooks.test/tracking"
INTERVAL: Final = "1s"  # scrape and rule evaluation: the rules themselves are unchanged


class Prometheus:
    """``prometheus`` scraping ``targets`` (namespace -> admin host:port list) with the rules."""

    def __init__(self, workdir: Path, targets: Mapping[str, list[str]]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._workdir = workdir
        self._log = workdir / "prometheus.log"
        config = {
            "global": {
                "scrape_interval": INTERVAL,
                "scrape_timeout": INTERVAL,
                "evaluation_interval": INTERVAL,
                "external_labels": {"runbook_base_url": RUNBOOK_BASE_URL},
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": f"tracking-{namespace}",
                    "static_configs": [
                        {"targets": list(hosts), "labels": {"namespace": namespace}}
                    ],
                }
                for namespace, hosts in targets.items()
            ],
        }
        self._config = workdir / "prometheus.yml"
        self._config.write_text(yaml.safe_dump(config))
        self._process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Prometheus:
        binary = check_terraform.prometheus_binary()  # installed by make test; never skipped
        self._process = await asyncio.to_thread(self._spawn, binary)
        process = self._process
        async with asyncio.timeout(30):
            while not await self._ready():
                if process.poll() is not None:
                    raise AssertionError(f"prometheus exited:\n{self.log()}")
                await asyncio.sleep(0.2)
        return self

    def _spawn(self, binary: Path) -> subprocess.Popen[bytes]:
        with self._log.open("ab") as log:
            return subprocess.Popen(  # noqa: S603 - our own arguments
                [
                    str(binary),
                    f"--config.file={self._config}",
                    f"--storage.tsdb.path={self._workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)

    def log(self) -> str:
        """The end of Prometheus' output."""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-40:])

    async def _ready(self) -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(f"{self.url}/-/ready") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    async def api(self, path: str, **params: str) -> Any:
        """``/api/v1/<path>``'s ``data``."""
        url = f"{self.url}/api/v1/{path}"
        async with aiohttp.ClientSession() as session, session.get(url, params=params) as answer:
            body = await answer.json()
        assert body["status"] == "success", body
        return body["data"]

    async def alerts(self) -> list[dict[str, Any]]:
        """Alerts pending or firing now."""
        data = await self.api("alerts")
        return list(data["alerts"])

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        data = await self.api("query", query=expr)
        return list(data["result"])
