"""A real browser for end-to-end tests: Debian's Chromium driven by Playwright, and a page server.

``tests/browser/install.sh`` (run by ``make test``) installs Chromium from Debian's packages and
Snowplow's browser tracker from the npm lock in ``tests/browser/``; nothing here downloads a
browser. :func:`serve_pages` serves the test page and the tracker's own bundled build on a port
of its own, so the page is another origin than the API it tracks to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from playwright.async_api import Browser, async_playwright

__all__ = ["CHROMIUM", "TRACKER_BUILD", "launch_chromium", "serve_pages"]

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"
TRACKER_BUILD = BROWSER_DIR / "node_modules/@snowplow/browser-tracker/dist/index.umd.min.js"
PAGE = BROWSER_DIR / "page.html"

# Without the background-networking flags Chromium keeps calling Google's services, which a
# closed network refuses. Playwright adds --headless and a new empty --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_INSTALL_HINT = "run tests/browser/install.sh (make test runs it) to install it"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise AssertionError(f"{path} is missing: {_INSTALL_HINT}")
    return path


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """Headless Chromium from ``/usr/bin/chromium`` (with a fresh profile), closed on exit."""
    executable = _require(CHROMIUM)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def serve_pages(port: int = 0, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``/`` (the test page) and ``/sp.js`` (the tracker build); yield the page's origin."""
    page, tracker = _require(PAGE), _require(TRACKER_BUILD)

    async def serve_page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(page, headers={"Cache-Control": "no-store"})

    async def serve_tracker(_: web.Request) -> web.FileResponse:
        return web.FileResponse(tracker, headers={"Content-Type": "text/javascript"})

    async def no_icon(_: web.Request) -> web.Response:
        # Chromium asks for one; a 404 would show among the console errors the tests report.
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", serve_page)
    app.router.add_get("/sp.js", serve_tracker)
    app.router.add_get("/favicon.ico", no_icon)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield f"http://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
