"""Resolving schema keys through Iglu registries in Snowplow's order, with a cache and a deadline.

Per request, not per event: :meth:`IgluResolver.resolve` takes every schema key a request uses,
looks up the ones not cached (each at most once at a time across requests), waits at most
``timeout_s``, and returns a :class:`Resolution` that validates synchronously with compiled
validators.

Order, as Snowplow's resolver: registries whose ``vendorPrefixes`` match the key's vendor
first, then embedded before HTTP, then by ``priority`` (lower first), then as configured. The
first registry that has the schema wins.

Outcomes of one key, all cached: found (for ``cache_ttl_s``), not found by any registry (for
``cache_ttl_s`` too: a miss costs one round of look-ups, not one per event), unusable (found but
does not compile; rejected like an unknown schema), and unavailable (no registry had it and one
that might have failed: cached only for ``failure_ttl_s``, so a registry outage is answered
quickly without hammering it, and is retried soon after). A key part too long to be a file name
is not found without asking anyone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from opentelemetry.trace import Status, StatusCode

from tracking_common.iglu.cache import TtlCache
from tracking_common.iglu.errors import (
    RegistryError,
    RegistryUnavailableError,
    SchemaNotFoundError,
    SchemaUnusableError,
)
from tracking_common.iglu.instruments import IgluInstruments, logger
from tracking_common.iglu.keys import SchemaKey
from tracking_common.iglu.registries import Registry
from tracking_common.iglu.validators import Validator, compile_schema, validate

__all__ = ["DEFAULT_CACHE_SIZE", "IgluResolver", "Lookup", "Resolution"]

DEFAULT_CACHE_SIZE: Final = 1000
"""Schemas (and misses) cached when no resolver configuration says otherwise."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """The outcome for one key: a validator, or why there is none."""

    validator: Validator | None = None
    unusable: str | None = None
    failed: tuple[str, ...] = ()

    @property
    def outcome(self) -> str:
        """``found``, ``not_found``, ``unusable`` or ``unavailable`` (the metric's label)."""
        if self.validator is not None:
            return "found"
        if self.unusable is not None:
            return "unusable"
        return "unavailable" if self.failed else "not_found"


_NOT_FOUND: Final = Lookup()


class Resolution:
    """The schemas of one request, resolved: validation is synchronous from here on."""

    __slots__ = ("_lookups",)

    def __init__(self, lookups: Mapping[SchemaKey, Lookup]) -> None:
        self._lookups = lookups

    def validate(self, key: SchemaKey, instance: Any) -> None:
        """Validate ``instance`` against ``key``'s schema.

        Raises SchemaNotFoundError, SchemaUnusableError or SchemaValidationError; KeyError if
        ``key`` was not resolved (a caller's bug).
        """
        lookup = self._lookups[key]
        if lookup.validator is None:
            if lookup.unusable is not None:
                raise SchemaUnusableError(key, lookup.unusable)
            raise SchemaNotFoundError(key)
        validate(lookup.validator, key, instance)


class IgluResolver:
    """Schemas from ``registries``, cached; see the module docstring for order and outcomes.

    Owns its registries: :meth:`close` closes them. Look-ups still running when a request's
    deadline passes go on (bounded by each registry's own timeout) and fill the cache for the
    request's retry. Keys come from clients, so registry load is bounded: at most
    ``max_concurrent_lookups`` keys are looked up at once, and beyond ``max_pending_lookups``
    waiting ones a request with new keys is refused as unavailable at once.
    """

    def __init__(
        self,
        registries: Sequence[Registry],
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_ttl_s: float | None = None,
        timeout_s: float = 2.0,
        failure_ttl_s: float = 5.0,
        max_concurrent_lookups: int = 16,
        max_pending_lookups: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        instruments: IgluInstruments | None = None,
    ) -> None:
        self._registries = tuple(registries)
        self._cache: TtlCache[SchemaKey, Lookup] = TtlCache(cache_size)
        self._ttl_s = cache_ttl_s
        self._timeout_s = timeout_s
        self._failure_ttl_s = failure_ttl_s
        self._clock = clock
        self._instruments = instruments or IgluInstruments()
        self._in_flight: dict[SchemaKey, asyncio.Task[Lookup]] = {}
        self._slots = asyncio.Semaphore(max_concurrent_lookups)
        self._max_pending = max_pending_lookups

    @property
    def registries(self) -> tuple[Registry, ...]:
        """The registries, as configured."""
        return self._registries

    def order(self, vendor: str) -> list[Registry]:
        """The registries in the order they are asked for a schema of ``vendor``."""
        return sorted(
            self._registries,
            key=lambda r: (not r.info.matches(vendor), r.class_priority, r.info.priority),
        )

    async def resolve(self, keys: Iterable[SchemaKey]) -> Resolution:
        """Resolve ``keys`` (duplicates are fine) within ``timeout_s``.

        Raises RegistryUnavailableError when a key is still unresolved at the deadline, or
        when no registry had it and one that might have failed. Cancelling the caller leaves
        shared look-ups running.
        """
        now = self._clock()
        lookups: dict[SchemaKey, Lookup] = {}
        missing: list[SchemaKey] = []
        for key in dict.fromkeys(keys):  # distinct, in order, deduplicated in C
            cached = self._cache.get(key, now)
            if cached is None and self._known_absent(key):
                # No I/O can find it (local indexes only): answered here, without a task.
                cached = self._remember(key, _NOT_FOUND)
            if cached is None:
                missing.append(key)
            else:
                lookups[key] = cached
        if missing:
            await self._look_up(missing, lookups)
        _raise_if_unavailable(lookups)
        return Resolution(lookups)

    async def _look_up(self, keys: list[SchemaKey], lookups: dict[SchemaKey, Lookup]) -> None:
        instruments = self._instruments
        with instruments.tracer.start_as_current_span("iglu resolve") as span:
            span.set_attribute("iglu.keys", len(keys))
            started = time.perf_counter()
            new = sum(1 for key in keys if key not in self._in_flight)
            if new and len(self._in_flight) + new > self._max_pending:
                span.set_status(Status(StatusCode.ERROR, "too many pending"))
                raise RegistryUnavailableError(keys, (), "too many schema look-ups pending")
            tasks = {self._task(key): key for key in keys}
            done, pending = await asyncio.wait(tasks, timeout=self._timeout_s)
            instruments.resolution_duration.record(time.perf_counter() - started)
            for task in done:
                lookups[tasks[task]] = task.result()
            if pending:
                span.set_status(Status(StatusCode.ERROR, "deadline"))
                late = [tasks[task] for task in pending]
                raise RegistryUnavailableError(
                    late, (), f"schemas not resolved within {self._timeout_s} s"
                )
            if any(lookup.failed for lookup in lookups.values()):
                span.set_status(Status(StatusCode.ERROR, "registry unavailable"))

    def _task(self, key: SchemaKey) -> asyncio.Task[Lookup]:
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._lookup(key), name=f"iglu lookup {key.uri[:100]}")
            self._in_flight[key] = task
            task.add_done_callback(lambda _done: self._in_flight.pop(key, None))
        return task

    def _known_absent(self, key: SchemaKey) -> bool:
        return not key.nameable or all(registry.lacks(key) for registry in self._registries)

    async def _lookup(self, key: SchemaKey) -> Lookup:
        async with self._slots:
            return self._remember(key, await self._ask_registries(key))

    def _remember(self, key: SchemaKey, lookup: Lookup) -> Lookup:
        ttl_s = self._failure_ttl_s if lookup.failed else self._ttl_s
        self._cache.put(key, lookup, ttl_s=ttl_s, now=self._clock())
        self._instruments.lookups.add(1, {"outcome": lookup.outcome})
        return lookup

    async def _ask_registries(self, key: SchemaKey) -> Lookup:
        failed: list[str] = []
        for registry in self.order(key.vendor):
            try:
                data = await registry.fetch(key)
                if data is None:
                    continue
                definition = _decode(registry.info.name, data)
            except RegistryError as error:
                failed.append(registry.info.name)
                logger.warning(
                    "schema registry failed: %s",
                    error,
                    extra={"registry": error.registry, "schema": key.uri[:300]},
                )
                continue
            try:
                return Lookup(await asyncio.to_thread(compile_schema, definition))
            except ValueError as exc:
                return Lookup(unusable=f"{registry.info.name}: {exc}")
        return Lookup(failed=tuple(failed)) if failed else _NOT_FOUND

    async def close(self) -> None:
        """Cancel running look-ups and close the registries (idempotent)."""
        for task in list(self._in_flight.values()):
            task.cancel()
        await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        for registry in self._registries:
            await registry.close()


def _decode(registry: str, data: bytes) -> Any:
    """The schema document; an answer that is not JSON is the registry's fault (a proxy's error
    page, a truncated body), not the schema's, so it counts as a failed look-up."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RegistryError(registry, "answered a body that is not JSON") from exc


def _raise_if_unavailable(lookups: Mapping[SchemaKey, Lookup]) -> None:
    unavailable = [key for key, lookup in lookups.items() if lookup.failed]
    if unavailable:
        failed = sorted({name for key in unavailable for name in lookups[key].failed})
        raise RegistryUnavailableError(
            unavailable, failed, f"schema registries unavailable: {', '.join(failed)}"
        )
