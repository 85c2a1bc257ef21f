"""Keyset pagination with opaque, tamper-proof page tokens.

A page token carries the sort key of the last row returned, bound to the organization and
to a fingerprint of the query (filter + order) that produced it, and is signed with HMAC-
SHA256 under the service's page-token secret. A token edited by hand, made for another
organization, or replayed with a different filter is rejected with INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from uuid import UUID

from libs.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_PAGE_TOKEN = 1024  # characters; the tokens we make are far shorter


def page_size(requested: int) -> int:
    """AIP-158: 0 → the default; negative → INVALID_ARGUMENT; above the maximum → the maximum."""
    if requested < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class PageTokenCodec:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("page token secret must be at least 16 bytes")
        self._secret = secret

    @staticmethod
    def fingerprint(*parts: object) -> str:
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]

    def encode(self, organization_id: UUID, query: str, last_key: Sequence[object]) -> str:
        payload = json.dumps({"o": str(organization_id), "q": query, "k": list(last_key)},
                             separators=(",", ":"), default=str).encode()
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + payload).rstrip(b"=").decode()

    def decode(self, token: str, organization_id: UUID, query: str) -> list | None:
        """The last key of the previous page, or None for the first page."""
        if not token:
            return None
        invalid = InvalidArgument.field("page_token", "invalid or expired page token")
        if len(token) > MAX_PAGE_TOKEN:
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise invalid from None
        mac, payload = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]):
            raise invalid
        data = json.loads(payload)
        if data.get("o") != str(organization_id) or data.get("q") != query:
            raise invalid
        return data["k"]
