"""Helpers shared by tests: keys, tokens, calls as one caller and the details of failed calls."""

from __future__ import annotations

import secrets
import uuid

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2, status_pb2

from libs.tenancy.tokens import TokenSigner, TokenVerifier


def new_phone() -> str:
    """A fresh Kyrgyz mobile number in E.164 (+99655 and 7 random digits)."""
    return "+99655" + str(secrets.randbelow(10**7)).zfill(7)


def new_signer(kid: str = "test-key") -> TokenSigner:
    return TokenSigner(kid, Ed25519PrivateKey.generate())


def verifier_for(*signers: TokenSigner) -> TokenVerifier:
    return TokenVerifier({s.kid: s._key.public_key() for s in signers})


def user_token(signer: TokenSigner, organization_id: uuid.UUID, role: str = "ADMIN",
               user_id: uuid.UUID | None = None, **kwargs) -> str:
    token, _ = signer.issue(organization_id=organization_id, subject=str(user_id or uuid.uuid4()),
                            role=role, **kwargs)
    return token


class Caller:
    """A stub whose every call carries the caller's metadata (`authorization: Bearer ...`)."""

    def __init__(self, stub, metadata) -> None:
        self.stub, self.metadata = stub, metadata

    def __getattr__(self, name):
        method = getattr(self.stub, name)
        return lambda request: method(request, metadata=self.metadata)


async def rpc_error(awaitable) -> grpc.aio.AioRpcError:
    """The error a call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    return caught.value


def _details(error: grpc.aio.AioRpcError, detail_type):
    """The first detail of `detail_type` in a failed call's google.rpc.Status, or None."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(detail_type.DESCRIPTOR):
                    message = detail_type()
                    detail.Unpack(message)
                    return message
    return None


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    return _details(error, error_details_pb2.ErrorInfo)


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """field → description of a failed call's BadRequest detail."""
    bad_request = _details(error, error_details_pb2.BadRequest)
    return {v.field: v.description for v in bad_request.field_violations} if bad_request else {}
