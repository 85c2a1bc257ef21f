"""The client's address (libs/tenancy/peer.py) and RetryInfo on limits (libs/errors.py,
libs/status.py, libs/clients.py), without a server."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from libs.clients import upstream_error
from libs.errors import ResourceExhausted
from libs.status import details, to_grpc_status
from libs.tenancy.peer import ClientPeer, address_group, client_address, peer_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize("peer,address", [
    ("ipv4:203.0.113.7:50123", "203.0.113.7"),
    ("ipv6:[2001:db8::1]:50123", "2001:db8::1"),
    ("ipv6:%5B2001:db8::1%5D:50123", "2001:db8::1"),  # newer gRPC percent-encodes the brackets
    ("ipv6:[::ffff:198.51.100.4]:1", "198.51.100.4"),  # IPv4-mapped: the IPv4 address
    ("unix:/tmp/socket", None),
    ("", None),
    (None, None),
    ("ipv4:garbage:1", None),
])
def test_the_peer_address(peer, address):
    result = peer_address(peer)
    assert (str(result) if result else None) == address


@pytest.mark.parametrize("peer,forwarded,client", [
    # No trusted proxy in the way: the header is the caller's word, ignored.
    ("ipv4:203.0.113.7:1", "198.51.100.1", "203.0.113.7"),
    # The gateway (trusted) forwards the browser's address.
    ("ipv4:10.0.0.5:1", "198.51.100.1", "198.51.100.1"),
    # The client's own invented hops stay to the left of what our proxies appended.
    ("ipv4:10.0.0.5:1", "1.2.3.4, 198.51.100.1", "198.51.100.1"),
    # Two proxies of ours: the first untrusted hop from the right.
    ("ipv4:10.0.0.5:1", "198.51.100.1, 10.1.1.1", "198.51.100.1"),
    # A hop that is no address ends the walk at the last one a trusted proxy wrote.
    ("ipv4:10.0.0.5:1", "junk, 10.1.1.1", "10.1.1.1"),
    ("ipv4:10.0.0.5:1", "junk", "10.0.0.5"),
    # A trusted proxy that forwarded nothing: itself.
    ("ipv4:10.0.0.5:1", None, "10.0.0.5"),
    ("ipv6:[fd00::2]:1", "2001:db8::7", "2001:db8::7"),
])
def test_forwarded_for_is_believed_from_trusted_proxies_only(peer, forwarded, client):
    metadata = [("x-forwarded-for", forwarded)] if forwarded else []
    assert str(client_address(peer, metadata, PROXIES)) == client
    assert str(ClientPeer(peer, metadata, PROXIES).address) == client


def test_with_no_trusted_proxies_the_header_is_ignored():
    assert str(client_address("ipv4:10.0.0.5:1", [("x-forwarded-for", "198.51.100.1")])) == "10.0.0.5"


def test_ipv6_clients_are_counted_by_their_64():
    group = address_group(ipaddress.ip_address("2001:db8:1:2:aaaa::1"))
    assert group == address_group(ipaddress.ip_address("2001:db8:1:2:bbbb::9"))
    assert group != address_group(ipaddress.ip_address("2001:db8:1:3:aaaa::1"))
    assert address_group(ipaddress.ip_address("198.51.100.4")) != address_group(ipaddress.ip_address("198.51.100.5"))
    # An IPv4 client and the IPv6 /64 that happens to share its bytes are told apart.
    assert address_group(ipaddress.ip_address("::c633:6404")) != address_group(ipaddress.ip_address("198.51.100.4"))


def _retry_info(status: grpc.Status) -> error_details_pb2.RetryInfo | None:
    for key, value in status.trailing_metadata:
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return info
    return None


def test_a_limit_says_when_to_retry():
    error = ResourceExhausted("slow down", reason="TOO_MANY_ATTEMPTS", retry_after=timedelta(seconds=61.5))
    status = to_grpc_status(error, "identity.soulkg.dev")
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = _retry_info(status)
    assert info is not None and info.retry_delay.ToTimedelta() == timedelta(seconds=61.5)
    assert ResourceExhausted("x", retry_after=2).retry_after == timedelta(seconds=2)


def test_no_retry_info_without_a_delay():
    assert len(details(ResourceExhausted("quota"))) == 1  # ErrorInfo only
    assert _retry_info(to_grpc_status(ResourceExhausted("quota"))) is None


def test_another_services_limit_keeps_its_retry_delay():
    status = to_grpc_status(ResourceExhausted("slow", reason="TOO_MANY_ATTEMPTS", retry_after=3))

    class Failed(grpc.aio.AioRpcError):
        def __init__(self):
            super().__init__(status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata),
                             details=status.details)

    error = upstream_error("identity", Failed())
    assert isinstance(error, ResourceExhausted)
    assert error.reason == "TOO_MANY_ATTEMPTS" and error.retry_after == timedelta(seconds=3)
