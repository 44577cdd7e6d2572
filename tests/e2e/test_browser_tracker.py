"""Snowplow's browser tracker in headless Chromium, through the whole pipeline to the collector.

The tracker is loaded from its npm package's own bundled build, on a page served from another
origin than the API, with the ``web_page`` entity on every event. The API refuses schemas it
cannot find (the default), so an event that arrives had its ``web_page`` entity checked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, ConsoleMessage, Request
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.support.browser import launch_chromium, serve_pages
from tests.support.collector import RunningCollector, start_collector
from tests.support.pipeline import create_topics, run_pipeline
from tests.support.services import free_port

# The first test also waits for the module's pipeline and, first in a run, the session's broker
# (over a minute on a busy machine); each test's own browser work takes a few seconds.
pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]

WEB_PAGE = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"
ZERO_ID = "00000000-0000-0000-0000-000000000000"
TRACKER_PATH = "/com.snowplowanalytics.snowplow/tp2"
SEND_TIMEOUT_MS = 15_000
ARRIVAL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Site:
    """The running pipeline, its collector, and the port of the page origin the API allows."""

    api: str
    collector: RunningCollector
    page_port: int

    @property
    def page_origin(self) -> str:
        """The test page's origin: the API's host, another port."""
        return f"http://127.0.0.1:{self.page_port}"

    def page_url(self, app_id: str, **options: str) -> str:
        """The test page, tracking to the API as ``app_id``; options as ``page.html`` reads them."""
        return f"{self.page_origin}/?{urlencode({'collector': self.api, 'app': app_id, **options})}"


@pytest.fixture(scope="module")
def site(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One pipeline for the module's tests; each tracks under its own app id."""
    topics = asyncio.run(create_topics(kafka_bootstrap, "browser"))
    page_port = free_port()
    with (
        start_collector() as collector,
        run_pipeline(
            kafka_env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
            topics=topics,
            collector_url=collector.base_url,
            workdir=tmp_path_factory.mktemp("browser-pipeline"),
            api_env={
                "API_KEYS": "browser-e2e-" + uuid.uuid4().hex,
                "API_ALLOWED_ORIGINS": f"http://127.0.0.1:{page_port}",
                # A non-secure cookie, since the pages and the API are served over plain HTTP.
                "API_NUID_COOKIE_SECURE": "false",
            },
        ) as running,
    ):
        yield Site(running.url, collector, page_port)


@dataclass(frozen=True)
class Visit:
    """What one browser context saw: the API's answer to each page view, and its cookies."""

    answers: list[tuple[int, str]]
    cookies: dict[str, str]


async def _view_pages(
    browser: Browser, site: Site, app_id: str, *, views: int, **page: str
) -> Visit:
    """Load the page ``views`` times in one browser context, its query given by ``page``.

    Each load waits for the tracker's POST and its answer; a request the browser refused
    (CORS) fails at once with the browser's console errors.
    """
    trouble: list[str] = []
    answers: list[tuple[int, str]] = []
    async with serve_pages(site.page_port):
        context = await browser.new_context()
        try:
            tab = await context.new_page()
            tab.on("console", lambda message: _note_console(trouble, message))
            tab.on("requestfailed", lambda request: _note_failure(trouble, request))
            for view in range(views):
                try:
                    async with tab.expect_request(
                        _is_tracker_post, timeout=SEND_TIMEOUT_MS
                    ) as sent:
                        await tab.goto(site.page_url(app_id, **page))
                except PlaywrightTimeoutError:
                    raise AssertionError(f"page view {view}: nothing sent: {trouble}") from None
                response = await (await sent.value).response()
                assert response is not None, f"page view {view}: no answer from the API: {trouble}"
                answers.append((response.status, await response.text()))
            cookies = await context.cookies(site.api)
        finally:
            await context.close()
    return Visit(answers, {cookie["name"]: cookie["value"] for cookie in cookies})


def _is_tracker_post(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith(TRACKER_PATH)


def _note_console(trouble: list[str], message: ConsoleMessage) -> None:
    if message.type in {"error", "warning"}:
        trouble.append(f"console {message.type}: {message.text}")


def _note_failure(trouble: list[str], request: Request) -> None:
    trouble.append(f"{request.method} {request.url} failed: {request.failure}")


async def _tracked(
    browser: Browser, site: Site, app_id: str, **page: str
) -> tuple[Visit, list[dict[str, Any]]]:
    """Two page views that the API accepted, and the collector's entries for them."""
    visit = await _view_pages(browser, site, app_id, views=2, **page)
    assert [status for status, _ in visit.answers] == [200, 200], visit.answers
    return visit, await _arrived(site.collector, app_id, 2)


async def _arrived(collector: RunningCollector, app_id: str, count: int) -> list[dict[str, Any]]:
    """Poll until ``count`` good events of ``app_id`` reached the collector; return them."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while True:
        entries = await collector.good(app_id=app_id)
        if len(entries) >= count:
            assert len(entries) == count, entries
            return entries
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{len(entries)} of {count} {app_id} events arrived within {ARRIVAL_TIMEOUT_S} s;"
                f" bad at the collector: {await collector.bad()}"
            )
        await asyncio.sleep(0.05)


def _entities(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The event's entities, from ``co`` (JSON) or ``cx`` (base64url JSON)."""
    if "co" in fields:
        text = fields["co"]
    else:
        encoded = fields["cx"]
        try:
            text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AssertionError(f"cx is not base64url JSON: {encoded!r}") from exc
    entities: list[dict[str, Any]] = json.loads(text)["data"]
    return entities


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as running:
        yield running


async def test_page_views_arrive_with_their_web_page_entity_checked(
    site: Site, browser: Browser
) -> None:
    _, entries = await _tracked(browser, site, "browser-web-page")
    page_ids = set()
    for entry in entries:
        fields = entry["event"]
        assert fields["e"] == "pv"
        assert fields["tv"].startswith("js-")
        assert fields["url"].startswith(site.page_origin + "/")
        assert WEB_PAGE in entry["contexts"]
        [web_page] = [item for item in _entities(fields) if item["schema"] == WEB_PAGE]
        page_ids.add(web_page["data"]["id"])
    assert len(page_ids) == 2, "each page load has its own web_page id"


async def test_a_page_view_whose_web_page_entity_breaks_its_schema_is_rejected(
    site: Site, browser: Browser
) -> None:
    visit = await _view_pages(browser, site, "browser-broken", views=1, broken_web_page="1")

    [(status, body)] = visit.answers
    assert status == 400, body
    answer = json.loads(body)
    assert answer["accepted"] == 0
    [rejected] = answer["errors"]
    assert {error["code"] for error in rejected["errors"]} == {"schema_violation"}, rejected


async def test_page_views_in_one_browser_share_the_network_user_id_cookie(
    site: Site, browser: Browser
) -> None:
    visit, entries = await _tracked(browser, site, "browser-named")
    tnuids = {entry["event"].get("tnuid") for entry in entries}
    assert len(tnuids) == 1, f"two page views, two network user ids: {tnuids}"
    [tnuid] = tnuids
    assert tnuid is not None
    assert tnuid != ZERO_ID
    assert str(uuid.UUID(tnuid)) == tnuid
    assert visit.cookies.get("sp") == tnuid, "the id is the one the API's cookie holds"
    assert {entry["event"].get("ip") for entry in entries} == {"127.0.0.1"}


async def test_anonymous_page_views_arrive_without_ip_and_with_the_zero_network_user_id(
    site: Site, browser: Browser
) -> None:
    visit, entries = await _tracked(browser, site, "browser-anonymous", anonymous="1")
    for entry in entries:
        fields = entry["event"]
        assert "ip" not in fields, fields["ip"]
        assert fields.get("tnuid") == ZERO_ID
        assert WEB_PAGE in entry["contexts"]
    assert "sp" not in visit.cookies, "no cookie is set for an anonymous tracker"
