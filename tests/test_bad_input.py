"""Requests that are not valid protobuf get INVALID_ARGUMENT with a plain message (never
UNKNOWN with the parser's text), before and without authentication."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from tests.helpers import error_info
from tests.identity_helpers import sign_up


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _deep_value(depth: int) -> bytes:
    """google.protobuf.Value nested `depth` times through list_value (field 6) -> values (field 1)."""
    value = _field(3, b"x")  # string_value
    for _ in range(depth):
        value = _field(6, _field(1, value))
    return value


CASES = {
    "bad UTF-8 in a string": _field(1, _field(2, b"\xff\xfe")),  # CreateClientRequest.client.phone
    "nesting beyond the parser's limit": _field(1, _field(9, _field(1, _field(1, b"k") + _field(2, _deep_value(200))))),
    "truncated message": _field(1, b"\x12\x10+99"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_undecodable_requests_are_invalid_argument(crm_channel, identity_channel, case):
    account = await sign_up(identity_channel, "bad-bytes")
    create = crm_channel.unary_unary("/soulkg.crm.v1.ClientService/CreateClient")
    for metadata in (account.metadata, None):  # with a valid token and with none at all
        with pytest.raises(aio.AioRpcError) as caught:
            await create(CASES[case], metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
        assert error_info(caught.value).reason == "MALFORMED_REQUEST"
        assert "parse" not in caught.value.details().lower()
