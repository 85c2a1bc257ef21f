"""Access tokens: EdDSA (Ed25519) JWTs issued by identity, verified everywhere with public keys.

Pinned algorithm, required exp/iat/iss/aud, a `kid` header choosing among the valid public
keys (two at once during a rotation), a small leeway. Verified tokens are cached until they
expire, so the hot path pays for a signature check once per token, not once per call.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from libs.errors import Unauthenticated
from libs.tenancy.context import PRINCIPAL_SERVICE, PRINCIPAL_USER, Principal

ALGORITHM = "EdDSA"
ISSUER = "soulkg-identity"
AUDIENCE = "soulkg-api"
ORG_CLAIM = "org"
LEEWAY_SECONDS = 30


class TokenSigner:
    """Signs access tokens (identity only: it alone holds a private key)."""

    def __init__(self, kid: str, private_key: Ed25519PrivateKey, *, ttl_seconds: int = 900,
                 issuer: str = ISSUER, audience: str = AUDIENCE) -> None:
        self.kid = kid
        self._key = private_key
        self.ttl_seconds = ttl_seconds
        self.issuer = issuer
        self.audience = audience

    def issue(self, *, organization_id: uuid.UUID, subject: str, kind: str = PRINCIPAL_USER,
              role: str | None = None, ttl_seconds: int | None = None) -> tuple[str, int]:
        """A signed token and its expiry (unix seconds)."""
        now = int(time.time())
        exp = now + (ttl_seconds or self.ttl_seconds)
        claims = {"iss": self.issuer, "aud": self.audience, "sub": subject, ORG_CLAIM: str(organization_id),
                  "kind": kind, "iat": now, "exp": exp, "jti": uuid.uuid4().hex}
        if role is not None:
            claims["role"] = role
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid}), exp


class TokenVerifier:
    """Verifies access tokens with public keys only."""

    def __init__(self, public_keys: Mapping[str, Ed25519PublicKey], *, issuer: str = ISSUER,
                 audience: str = AUDIENCE, leeway: int = LEEWAY_SECONDS, cache_size: int = 10_000) -> None:
        if not public_keys:
            raise ValueError("at least one public key is needed")
        self._keys = dict(public_keys)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + self._leeway > time.time():
                return cached
            del self._cache[token]
        principal = self._verify_uncached(token)
        self._cache[token] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    def _verify_uncached(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid", ""))
            if key is None:
                raise Unauthenticated("unknown signing key", reason="UNKNOWN_KEY")
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self._audience,
                                issuer=self._issuer, leeway=self._leeway,
                                options={"require": ["exp", "iat", "iss", "aud", "sub", ORG_CLAIM]})
            kind = claims.get("kind", PRINCIPAL_USER)
            if kind not in (PRINCIPAL_USER, PRINCIPAL_SERVICE):
                raise Unauthenticated("invalid token", reason="INVALID_TOKEN")
            return Principal(organization_id=uuid.UUID(claims[ORG_CLAIM]), subject=str(claims["sub"]),
                             kind=kind, role=claims.get("role"), token=token,
                             expires_at=float(claims["exp"]))
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from exc
        except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError) as exc:
            raise Unauthenticated("invalid token", reason="INVALID_TOKEN") from exc


# --- key files ------------------------------------------------------------------------------
# A key directory holds `<kid>.pub.pem` files (every valid public key) and, for identity,
# `<kid>.key.pem` private keys; `current` names the kid identity signs with.

def generate_key_pair(directory: Path, kid: str | None = None) -> str:
    """Write a new Ed25519 pair into `directory` and make it the signing key; returns its kid."""
    directory.mkdir(parents=True, exist_ok=True)
    kid = kid or time.strftime("%Y%m%d") + "-" + uuid.uuid4().hex[:8]
    private = Ed25519PrivateKey.generate()
    key_file = directory / f"{kid}.key.pem"
    key_file.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    key_file.chmod(0o600)
    (directory / f"{kid}.pub.pem").write_bytes(public_key_pem(private.public_key()))
    (directory / "current").write_text(kid + "\n")
    return kid


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_keys(directory: Path) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for path in sorted(directory.glob("*.pub.pem")):
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path.name}: not an Ed25519 public key")
        keys[path.name.removesuffix(".pub.pem")] = key
    return keys


def load_signer(directory: Path, ttl_seconds: int = 900) -> TokenSigner:
    kid = (directory / "current").read_text().strip()
    key = serialization.load_pem_private_key((directory / f"{kid}.key.pem").read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{kid}: not an Ed25519 private key")
    return TokenSigner(kid, key, ttl_seconds=ttl_seconds)
