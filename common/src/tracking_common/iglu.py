"""Iglu schema keys, an Iglu-style schema directory, and cached compiled validators.

An Iglu directory is laid out as ``<vendor>/<name>/jsonschema/<M-R-A>`` (files without an
extension, as in iglu-central). Schemas are compiled once with fastjsonschema and cached, so
validation on the hot path is a plain function call.

The Snowplow schemas this project needs (``payload_data``, ``contexts``, ``unstruct_event``)
ship inside the package, under ``schemas/iglu`` (see ``SOURCE.md`` there).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import fastjsonschema
import orjson

__all__ = [
    "BUNDLED_SCHEMA_DIR",
    "CONTEXTS_SCHEMA",
    "IGLU_URI_PATTERN",
    "PAYLOAD_DATA_SCHEMA",
    "UNSTRUCT_EVENT_SCHEMA",
    "IgluRepository",
    "SchemaKey",
    "SchemaNotFoundError",
    "SchemaValidationError",
    "bundled_repository",
]

# The vendor is dot-separated words ("com.acme"), never "." or "..": the key becomes a path
# inside the schema directory. Keys are matched whole (fullmatch), so a trailing newline is
# refused too. One grammar, two forms: named groups to parse a key here, and a plain anchored
# pattern for the event model (JSON Schema patterns have no named groups).
_WORD: Final = r"[a-zA-Z0-9_\-]+"
_VENDOR: Final = rf"{_WORD}(?:\.{_WORD})*"
_VERSION: Final = r"[0-9]{1,9}-[0-9]{1,9}-[0-9]{1,9}"
IGLU_URI_PATTERN: Final = rf"^iglu:{_VENDOR}/{_WORD}/{_WORD}/{_VERSION}$"
"""An ``iglu:vendor/name/format/M-R-A`` URI, anchored (the event model checks with it)."""
_KEY_PATTERN: Final = re.compile(
    rf"iglu:(?P<vendor>{_VENDOR})/(?P<name>{_WORD})/(?P<format>{_WORD})/(?P<version>{_VERSION})"
)

MAX_FILE_NAME_BYTES: Final = 255
"""The longest file name the usual filesystems allow (ext4, xfs, btrfs, APFS)."""

MAX_CACHED_MISSES: Final = 4096
"""Unknown keys remembered; beyond it the memory is cleared (keys come from clients)."""

# Iglu schemas declare Snowplow's self-describing meta-schema, which is JSON Schema draft-04
# plus a ``self`` block; fastjsonschema would otherwise fall back to its newest draft.
_DRAFT_04: Final = "http://json-schema.org/draft-04/schema#"

BUNDLED_SCHEMA_DIR: Final = Path(str(resources.files("tracking_common") / "schemas" / "iglu"))


class SchemaNotFoundError(LookupError):
    """No schema file exists for a key in the repository."""

    def __init__(self, key: SchemaKey) -> None:
        super().__init__(f"schema not found: {key.uri}")
        self.key = key


class SchemaValidationError(ValueError):
    """An instance does not match its schema; ``path`` points into the instance."""

    def __init__(self, uri: str, message: str, path: str) -> None:
        super().__init__(f"{uri}: {message}")
        self.uri = uri
        self.detail = message
        self.path = path


@dataclass(frozen=True, slots=True)
class SchemaKey:
    """The parts of an ``iglu:vendor/name/format/M-R-A`` URI."""

    vendor: str
    name: str
    format: str
    version: str

    @classmethod
    def parse(cls, uri: str) -> SchemaKey:
        """Parse an Iglu URI; raise ValueError if it is not one."""
        match = _KEY_PATTERN.fullmatch(uri)
        if match is None:
            raise ValueError(f"not an Iglu schema URI: {uri[:200]!r}")
        return cls(**match.groupdict())

    @property
    def uri(self) -> str:
        """The key as an ``iglu:`` URI."""
        return f"iglu:{self.vendor}/{self.name}/{self.format}/{self.version}"

    @property
    def relative_path(self) -> Path:
        """Where the schema lives inside an Iglu directory."""
        return Path(self.vendor, self.name, self.format, self.version)


PAYLOAD_DATA_SCHEMA: Final = SchemaKey.parse(
    "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
)
CONTEXTS_SCHEMA: Final = SchemaKey.parse(
    "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
)
UNSTRUCT_EVENT_SCHEMA: Final = SchemaKey.parse(
    "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
)

Validator = Callable[[Any], Any]


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
        try:
            validator(instance)
        except fastjsonschema.JsonSchemaValueException as exc:
            path = "/".join(str(part) for part in (exc.path or [])[1:])
            raise SchemaValidationError(key.uri, str(exc.message), path) from exc

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
        # A part longer than a file name may be cannot name a schema file; asking the
        # filesystem anyway raises OSError (ENAMETOOLONG) instead of answering "no such file".
        if any(len(part.encode()) > MAX_FILE_NAME_BYTES for part in key.relative_path.parts):
            return None
        for directory in self._directories:
            path = directory / key.relative_path
            if path.is_file():
                definition = orjson.loads(path.read_bytes())
                if not isinstance(definition, dict):
                    raise ValueError(f"schema file is not a JSON object: {path}")
                definition["$schema"] = _DRAFT_04
                compiled: Validator = fastjsonschema.compile(definition)
                return compiled
        return None


_BUNDLED: IgluRepository | None = None


def bundled_repository() -> IgluRepository:
    """The repository of the Snowplow schemas shipped with this package (built once)."""
    global _BUNDLED  # noqa: PLW0603 - a lazily built, immutable, process-wide cache
    if _BUNDLED is None:
        _BUNDLED = IgluRepository(BUNDLED_SCHEMA_DIR)
    return _BUNDLED
