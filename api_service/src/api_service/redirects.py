"""Click redirects (``/r/tp2?u=...``): which targets may be redirected to.

Only absolute ``http``/``https`` URLs whose host is listed are allowed, so the endpoint cannot be
used as an open redirect. Anything a browser might read differently from the parser here is
refused outright rather than normalised: backslashes (browsers take them for slashes), control
characters, spaces and non-ASCII text, user info (``good.example@evil.example``), and
scheme-relative or scheme-only forms (``//evil.example``, ``https:evil.example``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from api_service.errors import RedirectNotAllowedError, RedirectsDisabledError

__all__ = ["MAX_TARGET_CHARS", "RedirectTargets"]

MAX_TARGET_CHARS: Final = 8192  # uri_redirect's own limit on the uri
_PRINTABLE_ASCII: Final = re.compile(r"[\x21-\x7e]+")


class RedirectTargets:
    """The hosts redirects may go to; empty means the redirect route is off (404)."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self._hosts = frozenset(host.lower() for host in hosts)

    @property
    def enabled(self) -> bool:
        """Whether any host is allowed."""
        return bool(self._hosts)

    def check(self, target: str | None) -> str:
        """``target`` if it may be redirected to; else RedirectsDisabledError (when off) or
        RedirectNotAllowedError."""
        if not self._hosts:
            raise RedirectsDisabledError
        if not target:
            raise RedirectNotAllowedError("the redirect target u is missing", code="missing_target")
        if (
            len(target) > MAX_TARGET_CHARS
            or not _PRINTABLE_ASCII.fullmatch(target)
            or "\\" in target
        ):
            raise _refused("is not a plain absolute URL")
        parts = urlsplit(target)
        if parts.scheme.lower() not in {"http", "https"} or not target[
            len(parts.scheme) :
        ].startswith("://"):
            raise _refused("is not an absolute http(s) URL")
        if "@" in parts.netloc:
            raise _refused("carries user info")
        try:
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise _refused("has a malformed host or port") from None
        if host is None or host not in self._hosts:
            raise _refused("is not on an allowed host")
        return target


def _refused(why: str) -> RedirectNotAllowedError:
    return RedirectNotAllowedError(f"the redirect target {why} (API_REDIRECT_DOMAINS)")
