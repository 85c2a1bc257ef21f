"""Helpers shared by tests: keys, tokens and an in-process server on a real port."""

from __future__ import annotations

import uuid

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2, status_pb2

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
