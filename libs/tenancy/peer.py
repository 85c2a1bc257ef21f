"""The caller's network address: the gRPC peer, or the address a trusted proxy forwarded.

A call that arrives straight from a client has the client's address as its gRPC peer
(`ipv4:203.0.113.7:50123`, `ipv6:[2001:db8::1]:50123`). A call relayed by a proxy we run
(the gateway, a load balancer) has the proxy's address as its peer; the proxy names the
client in `x-forwarded-for` metadata (`client, proxy1, proxy2`: each hop appends the
address it received the request from). That header is believed only when the peer is one
of the configured trusted proxies (Settings.trusted_proxies, default none), and then read
from the right: the first address that is not itself a trusted proxy is the client. Anyone
can write anything into the header; only what our own proxies appended is true.

`ClientPeer` is made once per call by the interceptor and resolves lazily: calls that never
ask for the address pay for nothing but the object.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache
from urllib.parse import unquote

FORWARDED_FOR_HEADER = "x-forwarded-for"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# IPv6 clients are grouped by their /64 for limits: one subscriber usually gets a whole /64.
IPV6_GROUP_PREFIX = 64


@lru_cache(maxsize=4096)  # the same clients and connections come back: parse each once
def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)  # one peer string per connection
def peer_address(peer: str | None) -> IPAddress | None:
    """The IP address of a gRPC peer string; None for unix sockets and anything unparsable."""
    if not peer:
        return None
    kind, _, rest = unquote(peer).partition(":")
    if kind == "ipv4":
        return _address(rest.rpartition(":")[0])
    if kind == "ipv6":
        host = rest.rpartition("]")[0] if rest.startswith("[") else rest.rpartition(":")[0]
        return _address(host)
    return None


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in proxies)


def _forwarded_for(metadata: Iterable[tuple[str, str | bytes]] | None) -> list[str]:
    hops: list[str] = []
    for key, value in metadata or ():
        if key == FORWARDED_FOR_HEADER:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            hops.extend(part for part in text.split(","))
    return hops


def client_address(peer: str | None, metadata: Iterable[tuple[str, str | bytes]] | None,
                   trusted_proxies: Sequence[IPNetwork] = ()) -> IPAddress | None:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost
    forwarded address that is not a trusted proxy (an unparsable hop ends the walk: the hop
    to its right, which a trusted proxy wrote, is the best we know)."""
    address = peer_address(peer)
    if address is None or not trusted_proxies or not _trusted(address, trusted_proxies):
        return address
    for hop in reversed(_forwarded_for(metadata)):
        forwarded = _address(hop)
        if forwarded is None:
            break
        address = forwarded
        if not _trusted(address, trusted_proxies):
            break
    return address


def address_group(address: IPAddress) -> str:
    """What per-address limits count by (a key, not for display): an IPv4 address, or an
    IPv6 address's /64, from the packed bytes (no text formatting on the hot path)."""
    if isinstance(address, ipaddress.IPv6Address):
        return f"{address.packed[:IPV6_GROUP_PREFIX // 8].hex()}::/{IPV6_GROUP_PREFIX}"
    return f"{address.packed.hex()}/32"


class ClientPeer:
    """The current call's peer and metadata; the client address is worked out on first use."""

    __slots__ = ("_address", "_metadata", "_peer", "_resolved", "_trusted")

    def __init__(self, peer: str | None, metadata, trusted_proxies: Sequence[IPNetwork] = ()) -> None:
        self._peer = peer
        self._metadata = metadata
        self._trusted = trusted_proxies
        self._resolved = False
        self._address: IPAddress | None = None

    @property
    def address(self) -> IPAddress | None:
        if not self._resolved:
            self._address = client_address(self._peer, self._metadata, self._trusted)
            self._resolved = True
        return self._address
