"""Checking self-describing data (an event's and its entities') against their Iglu schemas.

Schemas are resolved per request, not per event: the schema keys of the whole request are
parsed once and resolved at once (asynchronously, with a deadline), then each event is
checked synchronously with compiled validators.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tracking_common.errors import ValidationIssue
from tracking_common.iglu import (
    RegistryUnavailableError,
    SchemaKey,
    SchemaNotFoundError,
    SchemaUnusableError,
    SchemaValidationError,
)
from tracking_common.iglu.resolver import IgluResolver, Resolution
from tracking_common.ingest.errors import SchemaRegistryUnavailableError
from tracking_common.ingest.structs import (
    EventStruct,
    SelfDescribingJsonStruct,
    SelfDescribingStruct,
)

__all__ = ["RequestSchemas", "resolve_schemas"]


def _self_describing(event: EventStruct) -> Iterator[tuple[str, SelfDescribingJsonStruct]]:
    """The event's self-describing data (its event, then each entity), with their paths."""
    described = getattr(event, "event", None)
    if described is not None:
        yield "/event", described
    for position, entity in enumerate(event.entities):
        yield f"/entities/{position}", entity


@dataclass(frozen=True, slots=True)
class RequestSchemas:
    """A request's schema keys, parsed once by URI, and their resolution."""

    keys: dict[str, SchemaKey]
    resolution: Resolution
    allow_unknown: bool

    def issues(self, event: EventStruct) -> list[ValidationIssue]:
        """Every schema problem of ``event``'s self-describing data, with paths into it."""
        if not event.entities and type(event) is not SelfDescribingStruct:
            return []
        issues: list[ValidationIssue] = []
        for path, sdj in _self_describing(event):
            issue = self._check(sdj, path)
            if issue is not None:
                issues.append(issue)
        return issues

    def _check(self, sdj: SelfDescribingJsonStruct, path: str) -> ValidationIssue | None:
        try:
            key = self.keys.get(sdj.schema_)
            if key is None:
                key = SchemaKey.parse(sdj.schema_)  # not an Iglu URI: raises, reported below
            self.resolution.validate(key, sdj.data)
        except SchemaNotFoundError:
            if self.allow_unknown:
                return None
            return ValidationIssue(f"{path}/schema", "unknown_schema", f"no schema {sdj.schema_}")
        except SchemaUnusableError as exc:
            return ValidationIssue(f"{path}/schema", "unusable_schema", str(exc))
        except SchemaValidationError as exc:
            detail_path = f"{path}/data" + (f"/{exc.path}" if exc.path else "")
            return ValidationIssue(detail_path, "schema_violation", exc.detail)
        except ValueError as exc:
            return ValidationIssue(f"{path}/schema", "invalid_schema_uri", str(exc))
        return None


async def resolve_schemas(
    resolver: IgluResolver, events: Iterable[EventStruct | None], *, allow_unknown: bool
) -> RequestSchemas:
    """Resolve the schemas ``events`` use; raises SchemaRegistryUnavailableError.

    A malformed URI is left out here and reported when its event is checked.
    """
    keys: dict[str, SchemaKey] = {}
    for event in events:
        # Most events carry no self-describing data: skip them without a generator.
        if event is None or not (event.entities or type(event) is SelfDescribingStruct):
            continue
        for _, sdj in _self_describing(event):
            if sdj.schema_ not in keys:
                with contextlib.suppress(ValueError):
                    keys[sdj.schema_] = SchemaKey.parse(sdj.schema_)
    try:
        resolution = await resolver.resolve(keys.values())
    except RegistryUnavailableError as error:
        raise SchemaRegistryUnavailableError(error.reason) from error
    return RequestSchemas(keys, resolution, allow_unknown)
