"""Compiling Iglu JSON Schemas into validators, and validating instances with them.

Schemas are compiled once with fastjsonschema, so validation on the hot path is a plain call.
A ``$ref`` to another Iglu Central schema (``http://iglucentral.com/schemas/...``) is read from
the bundled copy; any other remote ``$ref`` is refused: fastjsonschema would otherwise fetch it
with a blocking ``urlopen`` while compiling, from a URL a registry chose.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

import fastjsonschema
import orjson

from tracking_common.iglu.errors import SchemaValidationError
from tracking_common.iglu.keys import SchemaKey

__all__ = ["BUNDLED_SCHEMA_DIR", "Validator", "compile_schema", "validate"]

Validator = Callable[[Any], Any]

BUNDLED_SCHEMA_DIR: Final = Path(str(resources.files("tracking_common") / "schemas" / "iglu"))
"""Iglu Central's schemas and the project's own, in Iglu layout (see ``SOURCE.md`` there)."""

# Iglu schemas declare Snowplow's self-describing meta-schema, which is JSON Schema draft-04
# plus a ``self`` block; fastjsonschema would otherwise fall back to its newest draft.
_DRAFT_04: Final = "http://json-schema.org/draft-04/schema#"
_IGLU_CENTRAL_REF: Final = re.compile(
    r"https?://iglucentral\.com/schemas/"
    r"(?P<vendor>[^/#]+)/(?P<name>[^/#]+)/(?P<format>[^/#]+)/(?P<version>[^/#]+)#?"
)


def _bundled_ref(uri: str) -> Any:
    match = _IGLU_CENTRAL_REF.fullmatch(uri)
    if match is not None:
        key = SchemaKey.parse("iglu:{vendor}/{name}/{format}/{version}".format(**match.groupdict()))
        path = BUNDLED_SCHEMA_DIR / key.relative_path
        if path.is_file():
            return orjson.loads(path.read_bytes())
    raise ValueError(f"remote $ref {uri[:200]!r} is not a bundled Iglu Central schema")


class _RefHandlers(Mapping[str, Callable[[str], Any]]):
    """Every URI scheme maps to :func:`_bundled_ref` (an unknown scheme would reach urlopen)."""

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        return _bundled_ref

    def __contains__(self, scheme: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_HANDLERS: Final = _RefHandlers()


def compile_schema(definition: Any) -> Validator:
    """Compile a schema (a decoded JSON object); raise ValueError when it cannot be compiled.

    CPU-bound (a few milliseconds for a typical schema): callers on an event loop run it in a
    thread.
    """
    if not isinstance(definition, dict):
        raise ValueError("the schema is not a JSON object")  # noqa: TRY004 - bad data, not a bad call
    definition = {**definition, "$schema": _DRAFT_04}
    try:
        compiled: Validator = fastjsonschema.compile(definition, handlers=_HANDLERS)
    except (fastjsonschema.JsonSchemaDefinitionException, ValueError, TypeError) as exc:
        raise ValueError(f"the schema does not compile: {str(exc)[:200]}") from exc
    return compiled


def validate(validator: Validator, key: SchemaKey, instance: Any) -> None:
    """Validate ``instance``; raise SchemaValidationError with a path into it."""
    try:
        validator(instance)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = "/".join(str(part) for part in (exc.path or [])[1:])
        raise SchemaValidationError(key.uri, str(exc.message), path) from exc
