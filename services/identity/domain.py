"""identity's rules: what a valid slug, email and password are, who may grant which role,
and password hashing. No I/O here except the (thread-offloaded) argon2 work."""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from libs.errors import InvalidArgument

ROLE_SUPER_ADMIN = "SUPER_ADMIN"
ROLE_ADMIN = "ADMIN"
ROLE_MANAGER = "MANAGER"
GRANTABLE_ROLES = (ROLE_ADMIN, ROLE_MANAGER)  # SUPER_ADMIN is the platform's, not an org's

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SLUG_LENGTH = (3, 63)
PASSWORD_LENGTH = (10, 256)
NAME_MAX = 200

# OWASP's argon2id recommendation (m=19 MiB, t=2, p=1): ~30 ms a hash here. Hashes made
# with other parameters still verify and are rehashed with these on the next login.
PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the user does not exist, so every failed login costs the same.
_DUMMY_HASH = PASSWORD_HASHER.hash("not-a-real-password-0000")


def normalize_slug(slug: str, field: str = "organization_slug") -> str:
    slug = slug.strip().lower()
    if not SLUG_LENGTH[0] <= len(slug) <= SLUG_LENGTH[1] or not SLUG_PATTERN.match(slug):
        raise InvalidArgument.field(
            field, f"{SLUG_LENGTH[0]}-{SLUG_LENGTH[1]} characters: lowercase letters, digits, "
                   "single hyphens between them")
    return slug


def check_password(password: str, email: str, field: str = "password") -> None:
    if not PASSWORD_LENGTH[0] <= len(password) <= PASSWORD_LENGTH[1]:
        raise InvalidArgument.field(field, f"must be {PASSWORD_LENGTH[0]} to {PASSWORD_LENGTH[1]} characters")
    lowered = password.strip().lower()
    if lowered in (email.lower(), email.split("@")[0].lower()):
        raise InvalidArgument.field(field, "must not be the email address")
    if len(set(password)) < 4:
        raise InvalidArgument.field(field, "is too simple")


def check_organization_name(name: str, field: str = "organization_name") -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidArgument.field(field, f"is required, at most {NAME_MAX} characters")
    return name


def check_grantable_role(role: str, field: str = "user.role") -> str:
    if role not in GRANTABLE_ROLES:
        raise InvalidArgument.field(field, "must be ADMIN or MANAGER")
    return role


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(PASSWORD_HASHER.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True if it matches. With no hash (unknown user) it still does the work, then says no."""
    def _verify() -> bool:
        try:
            return PASSWORD_HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(_verify)


def needs_rehash(password_hash: str) -> bool:
    return PASSWORD_HASHER.check_needs_rehash(password_hash)
