"""The network user id cookie: a first-party UUID that recognises a browser across the sites of
one domain, as Snowplow's collector keeps it (``sp``).

The forwarder posts from a server, so the downstream collector never sees this cookie; the id
travels in each event's payload as ``tnuid`` instead (``tracking_common.protocol``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = ["NetworkUserCookie"]

SECONDS_PER_DAY: Final = 86_400
# Checked by pattern: a third of uuid.UUID's cost, on every tracker request.
_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class NetworkUserCookie:
    """Reads the id a browser presents and writes the ``Set-Cookie`` that keeps (and renews) it.

    ``domains`` are the cookie domains to choose from: the first that the request's host is, or
    is under, becomes the ``Domain``; with none matching (or none given) the cookie is the
    request host's own. Always ``HttpOnly``; ``SameSite=None`` (sent cross-site, so a tracker on
    another site of the domain is recognised) only when ``Secure``, which browsers require.
    """

    def __init__(
        self, *, name: str, domains: Sequence[str], max_age_days: int, secure: bool
    ) -> None:
        self.name = name
        self._domains = tuple(domain.lower().lstrip(".") for domain in domains)
        same_site = "None; Secure" if secure else "Lax"
        self._attributes = (
            f"; Max-Age={max_age_days * SECONDS_PER_DAY}; Path=/; HttpOnly; SameSite={same_site}"
        )

    def read(self, cookies: Mapping[str, str]) -> str | None:
        """The id the browser presented, if it is a UUID (anything else is replaced)."""
        value = cookies.get(self.name)
        if value is None:
            return None
        value = value.lower()
        return value if _UUID.fullmatch(value) else None

    def identify(self, cookies: Mapping[str, str], host_header: str) -> tuple[str, str]:
        """The browser's id (a new one if it presented none) and the ``Set-Cookie`` value;
        ``cookies`` are the request's, ``host_header`` its ``Host``."""
        network_user_id = self.read(cookies) or str(uuid.uuid4())
        # Only with domains to choose from is the host looked at.
        host = _hostname(host_header) if self._domains else ""
        return network_user_id, self.set_cookie(network_user_id, host)

    def set_cookie(self, network_user_id: str, host: str) -> str:
        """The ``Set-Cookie`` header value carrying ``network_user_id`` for ``host``."""
        domain = self._domain_for(host)
        scope = f"; Domain={domain}" if domain else ""
        return f"{self.name}={network_user_id}{scope}{self._attributes}"

    def _domain_for(self, host: str) -> str | None:
        for domain in self._domains:
            if host == domain or host.endswith("." + domain):
                return domain
        return None


def _hostname(host_header: str) -> str:
    """The host of a ``Host`` header, without its port, in lower case."""
    if host_header.startswith("["):  # an IPv6 literal: no cookie domain can match it
        return ""
    return host_header.partition(":")[0].lower()
