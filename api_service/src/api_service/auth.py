"""API keys: looked up in constant time, never logged, known by a short fingerprint."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

__all__ = ["ApiKeys", "key_from_headers"]


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class ApiKeys:
    """The accepted keys. :meth:`identify` answers the fingerprint of a valid key, else None.

    Every configured key is compared, each with :func:`hmac.compare_digest`, so the time taken
    tells nothing about which key, or how much of one, matched. The fingerprint (a SHA-256
    prefix) names the key in metrics, logs and the rate limiter without revealing it.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple((key.encode(), fingerprint(key)) for key in keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def identify(self, presented: str | None) -> str | None:
        """The fingerprint of the key ``presented`` if it is valid."""
        if presented is None:
            return None
        candidate = presented.encode()
        found: str | None = None
        for key, name in self._keys:
            if hmac.compare_digest(candidate, key):
                found = name
        return found


def fingerprint(key: str) -> str:
    """A short, non-reversible name for a key."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]
