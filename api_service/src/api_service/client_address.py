"""The one decision of who the client is: the socket's peer, or what trusted proxies say it is.

uvicorn is started with ``proxy_headers=False``, so the peer it reports is the socket's; this
module alone reads ``X-Forwarded-For``, and both the events' ``ip`` and the per-IP rate limit use
its answer.

Each proxy appends the address it received the connection from, so only the last entries were
written by proxies we trust; anything to their left is whatever the client sent. The client is
therefore the entry ``hops`` places from the right, and only when the peer itself is a trusted
proxy (a client that reaches the port directly gets its own address, whatever it sends).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Final

__all__ = ["ANY_PEER", "ClientAddress", "Network", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ANY_PEER: Final = "*"
UNKNOWN: Final = "unknown"


def parse_networks(text: str) -> tuple[Network, ...] | None:
    """Comma-separated addresses or CIDRs; ``None`` for ``*`` (any peer).

    Raises ValueError naming the entry that is neither.
    """
    entries = [part.strip() for part in text.split(",") if part.strip()]
    if ANY_PEER in entries:
        return None
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
    return tuple(networks)


class ClientAddress:
    """Tells a request's client address from its peer and ``X-Forwarded-For``."""

    def __init__(
        self, *, trust_forwarded_for: bool, proxies: Iterable[Network] | None, hops: int
    ) -> None:
        self._trust = trust_forwarded_for
        self._proxies: Sequence[Network] | None = None if proxies is None else tuple(proxies)
        self._hops = hops
        # Peers are few (the proxies, or the clients themselves): remember the verdicts.
        self._is_proxy = functools.lru_cache(maxsize=4096)(self._check_proxy)

    def of(self, peer: str | None, forwarded_for: Callable[[], Iterable[str]]) -> str:
        """The client's address: the peer, or the trusted hop of ``X-Forwarded-For``.

        ``forwarded_for`` gives the header's values; it is called only when they are believed.
        """
        if peer is None:
            return UNKNOWN
        if not self._trust or not self._is_proxy(peer):
            return peer
        entries = [entry.strip() for value in forwarded_for() for entry in value.split(",")]
        entries = [entry for entry in entries if entry]
        if not entries:
            return peer
        # Fewer entries than hops: every one of them was written by a trusted proxy (the client
        # reached an inner proxy directly), so the leftmost is the client.
        candidate = entries[-min(self._hops, len(entries))]
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            # Not an address (a misconfigured proxy): the peer is the best we know.
            return peer

    def _check_proxy(self, peer: str) -> bool:
        if self._proxies is None:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._proxies)
