"""For internal services with no user behind their work (the WhatsApp webhook): the signed
assertion that identity's `AuthService/IssueServiceToken` exchanges for a short-lived access
token scoped to one organization.

The service keeps its own Ed25519 private key; identity trusts the matching public key
installed as `<keys dir>/services/<service name>.pub.pem`. No secret is shared.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.tenancy.tokens import ALGORITHM

ASSERTION_AUDIENCE = "soulkg-identity"
ASSERTION_TTL_SECONDS = 60  # identity refuses assertions that live longer than 300 s


def load_service_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path.name}: not an Ed25519 private key")
    return key


def sign_assertion(key: Ed25519PrivateKey, service_name: str, organization_id: uuid.UUID | str,
                   ttl_seconds: int = ASSERTION_TTL_SECONDS, **extra_claims) -> str:
    now = int(time.time())
    claims = {"iss": service_name, "sub": service_name, "aud": ASSERTION_AUDIENCE, "org": str(organization_id),
              "iat": now, "exp": now + ttl_seconds, "jti": uuid.uuid4().hex, **extra_claims}
    return jwt.encode(claims, key, algorithm=ALGORITHM)
