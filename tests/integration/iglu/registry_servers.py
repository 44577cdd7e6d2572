"""Real HTTP Iglu registries for tests, on free local ports: a static repository serving a
schema tree, and an Iglu-Server-shaped one that checks the API key and can be made to fail or
to hang."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from aiohttp import web

Mode = Literal["ok", "failing", "slow"]


class _Server:
    def __init__(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app)
        self.url = ""

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()


class StaticRepository(_Server):
    """``GET /schemas/<vendor>/<name>/<format>/<version>`` from ``root``, as a static Iglu
    repository (any file server over the tree) answers; ``/moved/schemas/...`` redirects there."""

    def __init__(self, root: Path) -> None:
        app = web.Application()
        app.router.add_static("/schemas", root)
        app.router.add_get("/moved/schemas/{tail:.*}", self._moved)
        super().__init__(app)

    async def _moved(self, request: web.Request) -> web.StreamResponse:
        """Everything under ``/moved`` is redirected to where it is (as http -> https)."""
        raise web.HTTPMovedPermanently(f"/schemas/{request.match_info['tail']}")


class IgluServer(_Server):
    """``GET /api/schemas/...`` with an ``apikey`` header, as Iglu Server answers.

    ``mode``: ``ok`` serves ``root`` (404 when absent, 401 for a wrong key), ``failing``
    answers 500, ``slow`` holds every request until the server stops. ``requests`` counts them.
    """

    def __init__(self, root: Path, apikey: str) -> None:
        self.root = root
        self.apikey = apikey
        self.mode: Mode = "ok"
        self.requests = 0
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_get("/api/schemas/{vendor}/{name}/{format}/{version}", self._schema)
        super().__init__(app)

    async def _schema(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.mode == "slow":
            await self._released.wait()
        if self.mode != "ok":
            return web.json_response({"message": "internal error"}, status=500)
        if request.headers.get("apikey") != self.apikey:
            return web.json_response({"message": "not authorized"}, status=401)
        parts = [request.match_info[part] for part in ("vendor", "name", "format", "version")]
        path = self.root.joinpath(*parts)
        if ".." in parts or not path.is_file():
            return web.json_response({"message": "The schema is not found"}, status=404)
        return web.Response(body=path.read_bytes(), content_type="application/json")

    async def stop(self) -> None:
        self._released.set()
        await super().stop()
