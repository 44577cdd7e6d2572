"""The Iglu resolver over in-memory registries: order, outcomes, caching, deadline, sharing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from tracking_common.iglu import (
    RegistryUnavailableError,
    SchemaKey,
    SchemaNotFoundError,
    SchemaUnusableError,
    SchemaValidationError,
)
from tracking_common.iglu.errors import RegistryError
from tracking_common.iglu.instruments import IgluInstruments
from tracking_common.iglu.registries import (
    EMBEDDED_CLASS_PRIORITY,
    HTTP_CLASS_PRIORITY,
    RegistryInfo,
)
from tracking_common.iglu.resolver import IgluResolver

CLICK = SchemaKey.parse("iglu:com.acme/click/jsonschema/1-0-0")
OTHER = SchemaKey.parse("iglu:com.other/thing/jsonschema/1-0-0")


def schema(max_length: int = 10) -> bytes:
    return orjson.dumps(
        {
            "type": "object",
            "properties": {"id": {"type": "string", "maxLength": max_length}},
            "required": ["id"],
        }
    )


class FakeRegistry:
    """The Registry port in memory: ``schemas`` by key, ``fail`` raises, ``gate`` holds answers."""

    def __init__(
        self,
        name: str,
        schemas: dict[SchemaKey, bytes] | None = None,
        *,
        priority: float = 0,
        prefixes: tuple[str, ...] = (),
        http: bool = True,
    ) -> None:
        self.info = RegistryInfo(name, priority, prefixes)
        self.class_priority = HTTP_CLASS_PRIORITY if http else EMBEDDED_CLASS_PRIORITY
        self.schemas = schemas or {}
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.asked: list[SchemaKey] = []
        self.was_asked = asyncio.Event()
        self.closed = False

    def lacks(self, key: SchemaKey) -> bool:
        return False

    async def fetch(self, key: SchemaKey) -> bytes | None:
        self.asked.append(key)
        self.was_asked.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RegistryError(self.info.name, "answered 500")
        return self.schemas.get(key)

    async def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def resolver(*registries: FakeRegistry, **options: Any) -> IgluResolver:
    return IgluResolver(registries, **options)


async def test_a_found_schema_validates_synchronously() -> None:
    iglu = resolver(FakeRegistry("a", {CLICK: schema()}))

    resolution = await iglu.resolve([CLICK, CLICK])

    resolution.validate(CLICK, {"id": "x"})
    with pytest.raises(SchemaValidationError) as caught:
        resolution.validate(CLICK, {"id": "x" * 11})
    assert caught.value.path == "id"


async def test_not_found_in_every_registry_is_not_found() -> None:
    iglu = resolver(FakeRegistry("a"), FakeRegistry("b", http=False))

    resolution = await iglu.resolve([CLICK])

    with pytest.raises(SchemaNotFoundError):
        resolution.validate(CLICK, {"id": "x"})


def test_order_is_vendor_match_then_class_then_priority_then_as_configured() -> None:
    http_late = FakeRegistry("http-late", priority=5)
    http_acme = FakeRegistry("http-acme", priority=9, prefixes=("com.ac",))
    embedded = FakeRegistry("embedded", priority=7, http=False)
    http_early = FakeRegistry("http-early", priority=1)
    http_tie = FakeRegistry("http-tie", priority=1)
    iglu = resolver(http_late, http_acme, embedded, http_early, http_tie)

    def names(vendor: str) -> list[str]:
        return [registry.info.name for registry in iglu.order(vendor)]

    assert names("com.acme") == ["http-acme", "embedded", "http-early", "http-tie", "http-late"]
    assert names("com.other") == ["embedded", "http-early", "http-tie", "http-late", "http-acme"]


async def test_the_first_registry_in_order_that_has_the_schema_wins() -> None:
    strict = FakeRegistry("strict", {CLICK: schema(1)}, prefixes=("com.acme",))
    lenient = FakeRegistry("lenient", {CLICK: schema(10)}, http=False)
    iglu = resolver(lenient, strict)

    resolution = await iglu.resolve([CLICK])

    with pytest.raises(SchemaValidationError):
        resolution.validate(CLICK, {"id": "xy"})
    assert lenient.asked == []


async def test_a_failing_registry_is_passed_over_when_another_has_the_schema() -> None:
    down = FakeRegistry("down", prefixes=("com.acme",))
    down.fail = True
    iglu = resolver(down, FakeRegistry("up", {CLICK: schema()}))

    (await iglu.resolve([CLICK])).validate(CLICK, {"id": "x"})


async def test_a_failure_where_no_one_has_the_schema_is_unavailable_not_unknown() -> None:
    down = FakeRegistry("down")
    down.fail = True
    iglu = resolver(FakeRegistry("empty"), down)

    with pytest.raises(RegistryUnavailableError) as caught:
        await iglu.resolve([CLICK, OTHER])

    assert set(caught.value.keys) == {CLICK, OTHER}
    assert caught.value.registries == ("down",)


async def test_found_and_missing_schemas_are_cached_until_the_ttl() -> None:
    clock = Clock()
    registry = FakeRegistry("a", {CLICK: schema()})
    iglu = resolver(registry, cache_ttl_s=60, clock=clock)

    await iglu.resolve([CLICK, OTHER])
    await iglu.resolve([CLICK, OTHER])
    assert registry.asked == [CLICK, OTHER]

    clock.now += 60
    registry.schemas[OTHER] = schema()
    (await iglu.resolve([OTHER])).validate(OTHER, {"id": "x"})
    assert registry.asked == [CLICK, OTHER, OTHER]


async def test_without_a_ttl_the_cache_keeps_entries() -> None:
    clock = Clock()
    registry = FakeRegistry("a", {CLICK: schema()})
    iglu = resolver(registry, clock=clock)

    await iglu.resolve([CLICK])
    clock.now += 10**9
    await iglu.resolve([CLICK])

    assert registry.asked == [CLICK]


async def test_an_outage_is_remembered_briefly_then_retried() -> None:
    clock = Clock()
    registry = FakeRegistry("a", {CLICK: schema()})
    registry.fail = True
    iglu = resolver(registry, cache_ttl_s=600, failure_ttl_s=5, clock=clock)

    for _ in range(3):
        with pytest.raises(RegistryUnavailableError):
            await iglu.resolve([CLICK])
    assert registry.asked == [CLICK]

    registry.fail = False
    clock.now += 5
    (await iglu.resolve([CLICK])).validate(CLICK, {"id": "x"})


async def test_the_cache_is_bounded() -> None:
    registry = FakeRegistry("a", {CLICK: schema()})
    iglu = resolver(registry, cache_size=3)

    await iglu.resolve([CLICK])
    for n in range(10):
        await iglu.resolve([SchemaKey.parse(f"iglu:com.acme/made_up_{n}/jsonschema/1-0-0")])
    await iglu.resolve([CLICK])

    assert registry.asked.count(CLICK) == 2


async def test_a_slow_registry_misses_the_deadline_and_fills_the_cache_later() -> None:
    slow = FakeRegistry("slow", {CLICK: schema()})
    slow.gate = asyncio.Event()
    iglu = resolver(slow, timeout_s=0.05)

    with pytest.raises(RegistryUnavailableError) as caught:
        await iglu.resolve([CLICK])
    assert caught.value.keys == (CLICK,)
    assert caught.value.registries == ()

    slow.gate.set()
    async with asyncio.timeout(5):
        while True:  # the look-up goes on after the deadline and lands in the cache
            try:
                resolution = await iglu.resolve([CLICK])
                break
            except RegistryUnavailableError:
                await asyncio.sleep(0.01)
    resolution.validate(CLICK, {"id": "x"})
    assert slow.asked == [CLICK]


async def test_concurrent_requests_share_one_look_up() -> None:
    registry = FakeRegistry("a", {CLICK: schema()})
    registry.gate = asyncio.Event()
    iglu = resolver(registry)

    requests = [asyncio.create_task(iglu.resolve([CLICK])) for _ in range(5)]
    async with asyncio.timeout(5):
        await registry.was_asked.wait()
    registry.gate.set()
    for resolution in await asyncio.gather(*requests):
        resolution.validate(CLICK, {"id": "x"})

    assert registry.asked == [CLICK]


async def test_registry_load_is_bounded_however_many_keys_clients_send() -> None:
    registry = FakeRegistry("a", {CLICK: schema()})
    registry.gate = asyncio.Event()
    iglu = resolver(registry, max_concurrent_lookups=2, max_pending_lookups=3, timeout_s=5)
    keys = [SchemaKey.parse(f"iglu:com.acme/made_up_{n}/jsonschema/1-0-0") for n in range(3)]

    first = asyncio.create_task(iglu.resolve(keys))
    async with asyncio.timeout(5):
        await registry.was_asked.wait()
    with pytest.raises(RegistryUnavailableError, match="too many"):
        await iglu.resolve([CLICK])
    assert len(registry.asked) == 2  # the third waits for a slot

    registry.gate.set()
    await first
    assert len(registry.asked) == 3
    (await iglu.resolve([CLICK])).validate(CLICK, {"id": "x"})


async def test_a_schema_that_does_not_compile_is_unusable() -> None:
    bad_type = orjson.dumps({"type": "no-such-type"})
    iglu = resolver(FakeRegistry("a", {CLICK: b"[1, 2]", OTHER: bad_type}))

    resolution = await iglu.resolve([CLICK, OTHER])

    for key in (CLICK, OTHER):
        with pytest.raises(SchemaUnusableError, match="a: the schema"):
            resolution.validate(key, {})


async def test_an_answer_that_is_not_json_is_the_registrys_failure() -> None:
    iglu = resolver(FakeRegistry("garbled", {CLICK: b"<html>proxy error</html>"}))

    with pytest.raises(RegistryUnavailableError) as caught:
        await iglu.resolve([CLICK])

    assert caught.value.registries == ("garbled",)


async def test_a_remote_ref_is_refused_not_fetched() -> None:
    remote = orjson.dumps({"$ref": "http://127.0.0.1:9/x.json#"})
    iglu = resolver(FakeRegistry("a", {CLICK: remote}))

    with pytest.raises(SchemaUnusableError, match="remote"):
        (await iglu.resolve([CLICK])).validate(CLICK, {})


@pytest.mark.parametrize(
    "uri",
    [
        f"iglu:{'v' * 300}/ctx/jsonschema/1-0-0",
        f"iglu:com.acme/{'n' * 300}/jsonschema/1-0-0",
        f"iglu:com.acme/ctx/{'f' * 300}/1-0-0",
    ],
)
async def test_a_key_too_long_for_a_file_name_is_unknown_without_asking(uri: str) -> None:
    registry = FakeRegistry("a")
    registry.fail = True
    key = SchemaKey.parse(uri)

    resolution = await resolver(registry).resolve([key])

    with pytest.raises(SchemaNotFoundError):
        resolution.validate(key, {})
    assert registry.asked == []


async def test_close_closes_the_registries() -> None:
    registry = FakeRegistry("a")
    iglu = resolver(registry)

    await iglu.close()
    await iglu.close()

    assert registry.closed


async def test_lookups_are_counted_timed_traced_and_failures_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(exporter))
    instruments = IgluInstruments(meter=meters.get_meter("test"), tracer=tracers.get_tracer("test"))
    up = FakeRegistry("up", {CLICK: schema()}, prefixes=("com.acme",))
    down = FakeRegistry("down")
    down.fail = True
    iglu = resolver(up, down, instruments=instruments)

    await iglu.resolve([CLICK])
    await iglu.resolve([CLICK])  # from the cache: no span, no wait recorded
    with (
        caplog.at_level(logging.WARNING, "tracking_common.iglu"),
        pytest.raises(RegistryUnavailableError),
    ):
        await iglu.resolve([OTHER])

    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = list(metric.data.data_points)
    outcomes = {p.attributes["outcome"]: p.value for p in points["tracking_iglu_lookups"]}
    assert outcomes == {"found": 1, "unavailable": 1}
    (waited,) = points["tracking_iglu_resolution_duration"]
    assert waited.count == 2
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["iglu resolve", "iglu resolve"]
    assert spans[1].status.status_code is StatusCode.ERROR
    (line,) = [r for r in caplog.records if r.name == "tracking_common.iglu"]
    assert line.getMessage() == "schema registry failed: down: answered 500"
    assert getattr(line, "registry") == "down"  # noqa: B009 - an attribute set by extra=
    meters.shutdown()
    tracers.shutdown()
