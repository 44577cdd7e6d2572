"""ClientAddress: the peer unless a trusted proxy forwarded, then the entry hops from the right."""

from __future__ import annotations

import pytest
from api_service.client_address import ClientAddress, parse_networks


def _client(
    peer: str | None, *forwarded: str, proxies: str = "127.0.0.1,::1", hops: int = 1
) -> str:
    addresses = ClientAddress(trust_forwarded_for=True, proxies=parse_networks(proxies), hops=hops)
    return addresses.of(peer, lambda: forwarded)


@pytest.mark.parametrize(
    ("peer", "forwarded", "hops", "client"),
    [
        ("127.0.0.1", ("203.0.113.9",), 1, "203.0.113.9"),
        ("::1", ("2001:db8::1",), 1, "2001:db8::1"),
        ("127.0.0.1", ("1.1.1.1, 203.0.113.9",), 1, "203.0.113.9"),
        ("127.0.0.1", ("1.1.1.1", "203.0.113.9, 10.0.0.2"), 2, "203.0.113.9"),  # two headers
        ("127.0.0.1", ("203.0.113.9",), 3, "203.0.113.9"),  # fewer entries than hops
        ("127.0.0.1", (), 1, "127.0.0.1"),
        ("127.0.0.1", (" , ",), 1, "127.0.0.1"),
        ("127.0.0.1", ("not-an-address",), 1, "127.0.0.1"),
        ("192.0.2.50", ("203.0.113.9",), 1, "192.0.2.50"),  # the peer is no trusted proxy
        (None, ("203.0.113.9",), 1, "unknown"),
    ],
)
def test_client_address(
    peer: str | None, forwarded: tuple[str, ...], hops: int, client: str
) -> None:
    assert _client(peer, *forwarded, hops=hops) == client


def test_any_peer_is_trusted_with_a_star() -> None:
    assert _client("192.0.2.50", "203.0.113.9", proxies="*") == "203.0.113.9"


def test_cidrs_and_untrusted_mode() -> None:
    assert _client("10.1.2.3", "203.0.113.9", proxies="10.0.0.0/8") == "203.0.113.9"
    wary = ClientAddress(trust_forwarded_for=False, proxies=None, hops=1)
    assert wary.of("127.0.0.1", lambda: ["203.0.113.9"]) == "127.0.0.1"


def test_a_bad_proxy_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.internal'"):
        parse_networks("10.0.0.0/8, proxy.internal")
