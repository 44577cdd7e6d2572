"""Iglu directories read synchronously, with cached compiled validators: the simple case.

An Iglu directory is laid out as ``<vendor>/<name>/jsonschema/<M-R-A>`` (files without an
extension, as in iglu-central). Used where no event loop waits (the tracker-protocol envelopes,
the local collector, tests); the API resolves event and entity schemas with
:class:`~tracking_common.iglu.resolver.IgluResolver`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Final

import orjson

from tracking_common.iglu.errors import SchemaNotFoundError
from tracking_common.iglu.keys import SchemaKey
from tracking_common.iglu.validators import BUNDLED_SCHEMA_DIR, Validator, compile_schema, validate

__all__ = ["MAX_CACHED_MISSES", "IgluRepository", "bundled_repository"]

MAX_CACHED_MISSES: Final = 4096
"""Unknown keys remembered; beyond it the memory is cleared (keys come from clients)."""


class IgluRepository:
    """Schemas looked up in one or more Iglu directories, first match wins.

    Compiled validators are cached per key, and so are misses, so an unknown schema costs one
    directory look-up, not one per event. Misses are bounded (``max_cached_misses``): keys
    come from clients, and a stream of made-up ones must not grow memory. Safe to share
    between threads and tasks.
    """

    def __init__(self, *directories: Path, max_cached_misses: int = MAX_CACHED_MISSES) -> None:
        self._directories = tuple(directories)
        self._validators: dict[SchemaKey, Validator] = {}
        self._misses: set[SchemaKey] = set()
        self._max_misses = max_cached_misses
        self._lock = threading.Lock()

    @property
    def directories(self) -> tuple[Path, ...]:
        """The directories searched, in order."""
        return self._directories

    def has(self, key: SchemaKey) -> bool:
        """Whether a schema exists for ``key``."""
        return self._validator(key) is not None

    def validate(self, key: SchemaKey, instance: Any) -> None:
        """Validate ``instance`` against the schema named by ``key``.

        Raises SchemaNotFoundError when no directory has the schema, and SchemaValidationError
        when the instance does not match it.
        """
        validator = self._validator(key)
        if validator is None:
            raise SchemaNotFoundError(key)
        validate(validator, key, instance)

    def _validator(self, key: SchemaKey) -> Validator | None:
        validator = self._validators.get(key)
        if validator is not None or key in self._misses:
            return validator
        with self._lock:
            if key in self._validators:
                return self._validators[key]
            compiled = self._compile(key)
            if compiled is not None:
                self._validators[key] = compiled
            else:
                if len(self._misses) >= self._max_misses:
                    self._misses.clear()
                self._misses.add(key)
            return compiled

    @property
    def cached_misses(self) -> int:
        """How many unknown keys are remembered now."""
        return len(self._misses)

    def _compile(self, key: SchemaKey) -> Validator | None:
        if not key.nameable:
            return None
        for directory in self._directories:
            path = directory / key.relative_path
            if path.is_file():
                try:
                    return compile_schema(orjson.loads(path.read_bytes()))
                except ValueError as exc:
                    raise ValueError(f"{exc}: {path}") from exc
        return None


_BUNDLED: IgluRepository | None = None


def bundled_repository() -> IgluRepository:
    """The repository of the schemas shipped with this package (built once)."""
    global _BUNDLED  # noqa: PLW0603 - a lazily built, immutable, process-wide cache
    if _BUNDLED is None:
        _BUNDLED = IgluRepository(BUNDLED_SCHEMA_DIR)
    return _BUNDLED
