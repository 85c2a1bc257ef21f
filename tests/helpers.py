"""Helpers shared by tests: keys, tokens and an in-process server on a real port."""

from __future__ import annotations

import uuid

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from libs.tenancy.tokens import TokenSigner, TokenVerifier


def new_signer(kid: str = "test-key") -> TokenSigner:
    return TokenSigner(kid, Ed25519PrivateKey.generate())


def verifier_for(*signers: TokenSigner) -> TokenVerifier:
    return TokenVerifier({s.kid: s._key.public_key() for s in signers})


def user_token(signer: TokenSigner, organization_id: uuid.UUID, role: str = "ADMIN",
               user_id: uuid.UUID | None = None, **kwargs) -> str:
    token, _ = signer.issue(organization_id=organization_id, subject=str(user_id or uuid.uuid4()),
                            role=role, **kwargs)
    return token


def error_info(error: grpc.aio.AioRpcError | grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a failed call (None if it carries none)."""
    status = rpc_status.from_call(error) if not isinstance(error, grpc.aio.AioRpcError) else None
    if status is None:
        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                from google.rpc import status_pb2

                status = status_pb2.Status.FromString(value)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """field → description of a failed call's BadRequest detail."""
    from google.rpc import status_pb2

    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    return {v.field: v.description for v in bad.field_violations}
    return {}
