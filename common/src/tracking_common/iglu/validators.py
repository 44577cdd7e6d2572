"""Compiling Iglu JSON Schemas into validators, and validating instances with them.

Schemas are compiled once with jsonschema-rs (a Rust validator, as JSON Schema draft 4, named
explicitly, with ``format`` checked as Snowplow Enrich checks it), so validation on the hot
path is one call into Rust: 5 to 7 times faster than fastjsonschema on Iglu Central's schemas,
and compiling 6 to 25 times faster (figures in ``docs/decisions.md``).
A ``$ref`` to another Iglu Central schema (``http://iglucentral.com/schemas/...``) is read from
the bundled copy; any other remote ``$ref`` is refused rather than fetched from a URL a registry
chose.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Final

import jsonschema_rs
import orjson

from tracking_common.iglu.errors import SchemaValidationError
from tracking_common.iglu.keys import SchemaKey

__all__ = ["BUNDLED_SCHEMA_DIR", "Validator", "compile_schema", "validate"]

Validator = Callable[[Any], Any]
_MAX_MESSAGE: Final = 300  # messages quote the instance, which may be long

BUNDLED_SCHEMA_DIR: Final = Path(str(resources.files("tracking_common") / "schemas" / "iglu"))
"""Iglu Central's schemas and the project's own, in Iglu layout (see ``SOURCE.md`` there)."""

# Iglu schemas declare Snowplow's self-describing meta-schema, which is JSON Schema draft-04
# plus a ``self`` block; a validator would otherwise try to fetch that meta-schema.
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
    raise ValueError(
        f"remote $ref {orjson.dumps(uri[:200]).decode()} is not a bundled Iglu Central schema"
    )


def compile_schema(definition: Any) -> Validator:
    """Compile a schema (a decoded JSON object); raise ValueError when it cannot be compiled.

    CPU-bound (a fraction of a millisecond for a typical schema, more for a large one):
    callers on an event loop run it in a
    thread.
    """
    if not isinstance(definition, dict):
        raise ValueError("the schema is not a JSON object")  # noqa: TRY004 - bad data, not a bad call
    definition = {**definition, "$schema": _DRAFT_04}
    try:
        compiled = jsonschema_rs.Draft4Validator(
            definition, validate_formats=True, retriever=_bundled_ref
        )
    except (ValueError, TypeError) as exc:  # jsonschema_rs.ValidationError is a ValueError
        raise ValueError(f"the schema does not compile: {_first_line(exc)}") from exc
    validator: Validator = compiled.validate
    return validator


def validate(validator: Validator, key: SchemaKey, instance: Any) -> None:
    """Validate ``instance``; raise SchemaValidationError with a path into it and a message
    naming the place (``data.position.x: "a" is not of type "integer"``)."""
    try:
        validator(instance)
    except jsonschema_rs.ValidationError as exc:
        parts = list(exc.instance_path)
        where = "data" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts
        )
        message = (
            exc.message if len(exc.message) <= _MAX_MESSAGE else exc.message[:_MAX_MESSAGE] + "..."
        )
        detail = f"{where}: {message}"
        raise SchemaValidationError(key.uri, detail, "/".join(str(part) for part in parts)) from exc


def _first_line(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:200]
