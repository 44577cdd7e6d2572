"""The fast path's checks: the limits the event model enforces, without building the model.

Each check returns the payload value for input it vouches for and raises :class:`NeedsModel`
for anything else (the tracker then takes the model path, which accepts or refuses it with
the model's own messages): string types and lengths (the ``atomic`` column sizes), the Iglu
URI pattern (remembered per schema once it passed), integer ranges and finite numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Final

from tracking_common.events import Resolution, SelfDescribingJson, Subject
from tracking_common.iglu import IGLU_URI_PATTERN
from tracking_common.protocol import SUBJECT_TEXT, Payload

__all__ = [
    "CHECKED_SCHEMAS",
    "MAX_TITLE",
    "MAX_URL",
    "SUBJECT_KEYS",
    "NeedsModel",
    "int_in",
    "number",
    "optional_text",
    "page_fields",
    "ping_fields",
    "self_describing",
    "struct_fields",
    "subject_fields",
    "text",
]

# pydantic checks patterns with Rust's regex, whose ``$`` never matches before a final newline.
_IGLU_URI: Final = re.compile(IGLU_URI_PATTERN.removesuffix("$") + r"\Z")
_MAX_SCHEMA: Final = 512
MAX_URL: Final = 4096
MAX_TITLE: Final = 2000
_INT32: Final = 2**31
_EXACT_FLOAT: Final = 2**53
SUBJECT_KEYS: Final = (*(key for _, key in SUBJECT_TEXT), "vid", "res", "vp", "cd")
_OFFSET_KEYS: Final = ("pp_mix", "pp_max", "pp_miy", "pp_may")
# Schemas that passed the URI check: a set lookup instead of the pattern's 1-2 us per entity.
# Bounded, so a caller inventing schemas cannot grow it without end (past it: checked each time).
CHECKED_SCHEMAS: Final[set[str]] = set()
_MAX_CHECKED_SCHEMAS: Final = 4096


class NeedsModel(Exception):  # noqa: N818 - a signal between two paths, not an error for callers
    """The fast path does not vouch for this input; the event model must decide."""


def text(value: object, max_length: int) -> str:
    """``value`` when it is a plain ``str`` of 1 to ``max_length`` characters."""
    if type(value) is not str or not 0 < len(value) <= max_length:
        raise NeedsModel
    return value


def optional_text(value: object, max_length: int) -> str | None:
    """As :func:`text`, with None allowed."""
    return None if value is None else text(value, max_length)


def int_in(value: object, low: int, high: int) -> int:
    """``value`` when it is a plain ``int`` in ``[low, high]``."""
    if type(value) is not int or not low <= value <= high:
        raise NeedsModel
    return value


def number(value: object) -> str:
    """A finite ``float`` (or an ``int`` a float holds exactly) as ``protocol`` renders it."""
    if type(value) is int and -_EXACT_FLOAT < value < _EXACT_FLOAT:
        return str(value)
    if type(value) is not float or not math.isfinite(value):
        raise NeedsModel
    return str(int(value)) if value.is_integer() and abs(value) < _EXACT_FLOAT else repr(value)


def self_describing(value: object) -> dict[str, Any]:
    """The ``{"schema", "data"}`` form of an entity or self-describing event."""
    if type(value) is SelfDescribingJson:
        return value.as_json()
    if type(value) is not dict or len(value) != 2:
        raise NeedsModel
    schema = value.get("schema")
    if type(schema) is not str or type(value.get("data")) is not dict:
        raise NeedsModel
    if schema not in CHECKED_SCHEMAS:
        if len(schema) > _MAX_SCHEMA or _IGLU_URI.match(schema) is None:
            raise NeedsModel
        if len(CHECKED_SCHEMAS) < _MAX_CHECKED_SCHEMAS:
            CHECKED_SCHEMAS.add(schema)
    return value


def _resolution(value: Resolution) -> str:
    return f"{value.width}x{value.height}"


def subject_fields(subject: Subject | None) -> Payload:
    """A validated :class:`Subject` as payload fields (``uid``, ``res``, ...)."""
    if subject is None:
        return {}
    if type(subject) is not Subject:
        raise NeedsModel
    fields = {
        key: value for name, key in SUBJECT_TEXT if (value := getattr(subject, name)) is not None
    }
    if subject.session_index is not None:
        fields["vid"] = str(subject.session_index)
    if subject.screen_resolution is not None:
        fields["res"] = _resolution(subject.screen_resolution)
    if subject.viewport is not None:
        fields["vp"] = _resolution(subject.viewport)
    if subject.color_depth is not None:
        fields["cd"] = str(subject.color_depth)
    return fields


def page_fields(url: object, title: object, referrer: object) -> Payload:
    """``url``, ``page`` and ``refr`` (limits of ``events.Page``)."""
    # text()'s checks written out: three calls were a tenth of a page view's building.
    if type(url) is not str or not 0 < len(url) <= MAX_URL:
        raise NeedsModel
    fields = {"url": url}
    if title is not None:
        if type(title) is not str or not 0 < len(title) <= MAX_TITLE:
            raise NeedsModel
        fields["page"] = title
    if referrer is not None:
        if type(referrer) is not str or not 0 < len(referrer) <= MAX_URL:
            raise NeedsModel
        fields["refr"] = referrer
    return fields


def ping_fields(offsets: Sequence[object]) -> Payload:
    """``pp_mix``, ``pp_max``, ``pp_miy``, ``pp_may`` (32-bit integers)."""
    return {
        key: str(int_in(offset, -_INT32, _INT32 - 1))
        for key, offset in zip(_OFFSET_KEYS, offsets, strict=True)
        if offset is not None
    }


def struct_fields(
    category: object, action: object, label: object, property_: object, value: object
) -> Payload:
    """``se_ca``, ``se_ac``, ``se_la``, ``se_pr``, ``se_va`` (limits of ``StructEvent``)."""
    fields = {"se_ca": text(category, 1000), "se_ac": text(action, 1000)}
    if label is not None:
        fields["se_la"] = text(label, 4096)
    if property_ is not None:
        fields["se_pr"] = text(property_, 1000)
    if value is not None:
        fields["se_va"] = number(value)
    return fields
