"""The Iglu errors.

::

    SchemaNotFoundError (LookupError)      every repository says the schema does not exist
    SchemaUnusableError (LookupError)      a repository has it, but it cannot be compiled
    SchemaValidationError (ValueError)     an instance does not match its schema
    RegistryError (Exception)              one registry did not answer usefully (internal)
    RegistryUnavailableError (Exception)   no answer for a schema some registry may hold;
                                           retryable: not the instance's fault

The first three are about one event; the last is about the registries, and the API answers it
with 503 and ``Retry-After`` rather than rejecting the event.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracking_common.iglu.keys import SchemaKey

__all__ = [
    "RegistryError",
    "RegistryUnavailableError",
    "SchemaNotFoundError",
    "SchemaUnusableError",
    "SchemaValidationError",
]


class SchemaNotFoundError(LookupError):
    """No repository has a schema for ``key``."""

    def __init__(self, key: SchemaKey) -> None:
        super().__init__(f"schema not found: {key.uri}")
        self.key = key


class SchemaUnusableError(LookupError):
    """A repository returned a schema for ``key`` that cannot be compiled."""

    def __init__(self, key: SchemaKey, reason: str) -> None:
        super().__init__(f"schema {key.uri} cannot be used: {reason}")
        self.key = key
        self.reason = reason


class SchemaValidationError(ValueError):
    """An instance does not match its schema; ``path`` points into the instance."""

    def __init__(self, uri: str, message: str, path: str) -> None:
        super().__init__(f"{uri}: {message}")
        self.uri = uri
        self.detail = message
        self.path = path


class RegistryError(Exception):
    """One registry failed to answer a look-up (timeout, connection, status other than 404).

    ``registry`` is the repository's configured name; the message never holds its API key.
    """

    retryable = True

    def __init__(self, registry: str, reason: str) -> None:
        super().__init__(f"{registry}: {reason}")
        self.registry = registry
        self.reason = reason


class RegistryUnavailableError(Exception):
    """Schemas could not be resolved in time, or a registry that may hold them failed.

    ``keys`` are the unresolved schemas, ``registries`` the names of the failed registries
    (empty when the deadline passed first).
    """

    retryable = True

    def __init__(self, keys: Sequence[SchemaKey], registries: Sequence[str], reason: str) -> None:
        super().__init__(reason)
        self.keys = tuple(keys)
        self.registries = tuple(registries)
        self.reason = reason
