"""Iglu schema keys: the ``iglu:vendor/name/format/M-R-A`` URI grammar and its parts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "CONTEXTS_SCHEMA",
    "IGLU_URI_PATTERN",
    "MAX_FILE_NAME_BYTES",
    "PAYLOAD_DATA_SCHEMA",
    "UNSTRUCT_EVENT_SCHEMA",
    "SchemaKey",
]

# The vendor is dot-separated words ("com.acme"), never "." or "..": the key becomes a path
# inside a schema directory and a URL path. Keys are matched whole (fullmatch), so a trailing
# newline is refused too. One grammar, two forms: named groups to parse a key here, and a plain
# anchored pattern for the event model (JSON Schema patterns have no named groups).
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

    @property
    def url_path(self) -> str:
        """Where a registry serves the schema, below its ``/schemas`` (the grammar is URL-safe)."""
        return f"{self.vendor}/{self.name}/{self.format}/{self.version}"

    @property
    def nameable(self) -> bool:
        """Whether every part fits a file name; a longer part names no schema anywhere.

        Asking a filesystem anyway raises ENAMETOOLONG instead of answering "no such file",
        and no registry stores such a schema, so the key is unknown without a look-up.
        """
        return all(
            len(part.encode()) <= MAX_FILE_NAME_BYTES
            for part in (self.vendor, self.name, self.format, self.version)
        )


PAYLOAD_DATA_SCHEMA: Final = SchemaKey.parse(
    "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
)
CONTEXTS_SCHEMA: Final = SchemaKey.parse(
    "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
)
UNSTRUCT_EVENT_SCHEMA: Final = SchemaKey.parse(
    "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
)
