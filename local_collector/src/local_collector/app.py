"""The collector's aiohttp application: Snowplow endpoints, the Micro-style API and faults.

Faults apply to the Snowplow endpoints (``tp2`` and ``/i``) only. A request a fault answers or
drops stores nothing, so its sender must retry; a delay-only fault answers normally once the
delay is over.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from local_collector.faults import FaultAction, FaultInjector, FaultSpec
from local_collector.store import EventStore, GoodFilter
from local_collector.validation import (
    BadEventError,
    InvalidBodyError,
    count_plain_events,
    describe_event,
    event_ids,
    parse_json,
    validate_payload_data,
    validate_query,
)

__all__ = ["STATE", "TP2_PATH", "CollectorState", "build_app"]

logger = logging.getLogger(__name__)

TP2_PATH: Final = "/com.snowplowanalytics.snowplow/tp2"
PIXEL_PATH: Final = "/i"
# The smallest transparent 1x1 GIF, as pixel trackers expect.
PIXEL: Final = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_BODY_EXCERPT: Final = 2_000
_FAULTS_ADAPTER: Final = TypeAdapter(FaultSpec | list[FaultSpec])


@dataclass(slots=True)
class CollectorState:
    """What the handlers share: the store and the active faults."""

    store: EventStore
    faults: FaultInjector


STATE: Final = web.AppKey("collector_state", CollectorState)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _apply_fault(request: web.Request, action: FaultAction) -> web.StreamResponse | None:
    """Carry out a fault; None means the request goes on to be processed normally."""
    logger.warning(
        "fault injected",
        extra={
            "fault_id": action.fault_id,
            "path": request.path,
            "status": action.status,
            "delay_s": action.delay_s,
            "drop_connection": action.drop_connection,
        },
    )
    if action.delay_s:
        await asyncio.sleep(action.delay_s)
    if action.drop_connection:
        # Close the socket with no answer at all: the sender sees a reset / disconnect.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    if action.status is not None:
        headers = {} if action.retry_after is None else {"Retry-After": action.retry_after}
        return _json(
            {"error": "injected fault", "fault_id": action.fault_id}, action.status, headers
        )
    return None


def _record_bad(state: CollectorState, path: str, reason: str, raw: str, where: str = "") -> None:
    state.store.add_bad(
        {
            "received_at": _now(),
            "path": path,
            "reason": reason,
            "where": where,
            "raw": raw[:_BODY_EXCERPT],
        }
    )


def _store(state: CollectorState, events: list[dict[str, str]], path: str) -> None:
    if state.store.count_only:
        state.store.count_good(len(events))
        return
    received_at = _now()
    good = []
    for payload in events:
        try:
            good.append(describe_event(payload, received_at=received_at, path=path))
        except BadEventError as exc:
            _record_bad(state, path, str(exc), orjson.dumps(payload).decode())
    state.store.add_good(good)


async def tp2(request: web.Request) -> web.StreamResponse:
    """POST payload_data: 200 and stored, or 400 with the reason and recorded as bad."""
    state = request.app[STATE]
    body = await request.read()
    if state.store.count_only and not state.faults:
        # The benchmarks' instrument: count without building the events (see count_plain_events).
        count = count_plain_events(body)
        if count is not None:
            state.store.count_good(count)
            return web.Response(text="ok")
    document = parse_json(body)
    if state.faults:
        eids = event_ids(document)
        data = document.get("data") if isinstance(document, dict) else None
        count = len(data) if isinstance(data, list) else 0
        action = state.faults.take(count, eids)
        if action is not None and (answer := await _apply_fault(request, action)) is not None:
            return answer
    try:
        events = validate_payload_data(document)
    except InvalidBodyError as exc:
        _record_bad(state, TP2_PATH, exc.reason, body.decode(errors="replace"), exc.path)
        logger.debug("bad request", extra={"path": TP2_PATH, "reason": exc.reason})
        return _json({"error": "invalid payload_data", "reason": exc.reason, "path": exc.path}, 400)
    _store(state, events, TP2_PATH)
    return web.Response(text="ok")


async def pixel(request: web.Request) -> web.StreamResponse:
    """GET one event in the query string: a 1x1 GIF, or 400 with the reason."""
    state = request.app[STATE]
    query = {key: request.query[key] for key in request.query}
    if state.faults:
        eid = query.get("eid")
        action = state.faults.take(1, () if eid is None else (eid,))
        if action is not None and (answer := await _apply_fault(request, action)) is not None:
            return answer
    try:
        event = validate_query(query)
    except InvalidBodyError as exc:
        _record_bad(state, PIXEL_PATH, exc.reason, request.query_string, exc.path)
        return _json({"error": "invalid payload_data", "reason": exc.reason, "path": exc.path}, 400)
    _store(state, [event], PIXEL_PATH)
    return web.Response(body=PIXEL, content_type="image/gif")


async def healthz(_: web.Request) -> web.StreamResponse:
    """Liveness."""
    return _json({"status": "ok"})


async def micro_all(request: web.Request) -> web.StreamResponse:
    """Totals since the last reset: ``{"total", "good", "bad"}``."""
    store = request.app[STATE].store
    good, bad = store.good_total, store.bad_total
    return _json({"total": good + bad, "good": good, "bad": bad})


def _optional_int(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise web.HTTPBadRequest(
            text=orjson.dumps({"error": f"{name} must be a non-negative integer"}).decode(),
            content_type="application/json",
        )
    return int(text)


async def micro_good(request: web.Request) -> web.StreamResponse:
    """Kept good events, filtered by event_type, app_id, eid, schema; paged by offset, limit."""
    query = GoodFilter(
        event_type=request.query.get("event_type"),
        app_id=request.query.get("app_id"),
        eid=request.query.get("eid"),
        schema=request.query.get("schema"),
        limit=_optional_int(request, "limit"),
        offset=_optional_int(request, "offset") or 0,
    )
    return _json(request.app[STATE].store.good(query))


async def micro_good_count(request: web.Request) -> web.StreamResponse:
    """``{"count": n}``: good events since the last reset, kept or not."""
    return _json({"count": request.app[STATE].store.good_total})


async def micro_eids(request: web.Request) -> web.StreamResponse:
    """Event ids of the kept good events, in arrival order, duplicates included."""
    return _json(request.app[STATE].store.eids())


async def micro_bad(request: web.Request) -> web.StreamResponse:
    """Kept bad requests and events, with the reason."""
    return _json(request.app[STATE].store.bad())


async def micro_reset(request: web.Request) -> web.StreamResponse:
    """Forget every event and clear every fault."""
    state = request.app[STATE]
    state.store.reset()
    state.faults.clear()
    logger.info("reset")
    return _json({"total": 0, "good": 0, "bad": 0})


async def faults_get(request: web.Request) -> web.StreamResponse:
    """The faults in force, in order."""
    return _json({"faults": request.app[STATE].faults.active()})


async def faults_post(request: web.Request) -> web.StreamResponse:
    """Add one fault (a JSON object) or several (an array), after the existing ones."""
    try:
        parsed = _FAULTS_ADAPTER.validate_json(await request.read())
    except ValidationError as exc:
        details = [
            {"loc": [str(part) for part in error["loc"]], "msg": error["msg"]}
            for error in exc.errors(include_url=False)
        ]
        return _json({"error": "invalid fault", "details": details}, 400)
    specs = parsed if isinstance(parsed, list) else [parsed]
    faults = request.app[STATE].faults
    added = [faults.add(spec) for spec in specs]
    for fault in added:
        logger.info("fault added", extra={"fault": fault})
    return _json({"faults": added}, 201)


async def faults_delete(request: web.Request) -> web.StreamResponse:
    """Remove every fault."""
    request.app[STATE].faults.clear()
    logger.info("faults cleared")
    return _json({"faults": []})


def build_app(*, max_events: int = 100_000, count_only: bool = False) -> web.Application:
    """The collector application with an empty store and no faults."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = CollectorState(
        store=EventStore(max_events=max_events, count_only=count_only), faults=FaultInjector()
    )
    app.router.add_post(TP2_PATH, tp2)
    app.router.add_get(PIXEL_PATH, pixel)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/micro/all", micro_all)
    app.router.add_get("/micro/good", micro_good)
    app.router.add_get("/micro/good/count", micro_good_count)
    app.router.add_get("/micro/eids", micro_eids)
    app.router.add_get("/micro/bad", micro_bad)
    app.router.add_post("/micro/reset", micro_reset)
    app.router.add_get("/micro/faults", faults_get)
    app.router.add_post("/micro/faults", faults_post)
    app.router.add_delete("/micro/faults", faults_delete)
    return app
