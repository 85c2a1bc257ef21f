"""identity's rules: what a valid organization, slug, email and password are, who may
grant which role, when a refresh token still works, and password hashing; the entities
identity's repository returns and the typed requests its servicers build.

Plain values only: no SQL, no protobuf, no I/O (the argon2 work runs in a thread). Each
validation collects every violation of one request into one INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from libs.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
)
from libs.validation import (
    EMAIL_MAX,
    Violations,
    bounded_text,
    etag,
    json_object_text,
    mask_paths,
    normalize_email,
    optional_text,
    optional_uuid,
    parse_uuid,
)

ROLE_SUPER_ADMIN = "SUPER_ADMIN"
ROLE_ADMIN = "ADMIN"
ROLE_MANAGER = "MANAGER"
GRANTABLE_ROLES = (ROLE_ADMIN, ROLE_MANAGER)  # SUPER_ADMIN is the platform's, not an org's
DEFAULT_ROLE = ROLE_MANAGER

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SLUG_LENGTH = (3, 63)
PASSWORD_LENGTH = (10, 256)
NAME_MAX = 200
LOGO_URL_MAX = 2048
REFRESH_TOKEN_MAX = 200
SERVICE_NAME_MAX = 63
ASSERTION_MAX = 8192

USER_UPDATABLE = ("first_name", "last_name", "role", "is_active")
ORGANIZATION_UPDATABLE = ("name", "logo_url", "settings")

# OWASP's argon2id recommendation (m=19 MiB, t=2, p=1): ~30 ms a hash here. Hashes made
# with other parameters still verify and are rehashed with these on the next login.
PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the user does not exist, so every failed login costs the same.
_DUMMY_HASH = PASSWORD_HASHER.hash("not-a-real-password-0000")


# --- entities --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Organization:
    id: UUID
    name: str
    slug: str
    logo_url: str | None
    settings: dict | None
    create_time: datetime
    update_time: datetime
    etag: str  # AIP-154: changes with every update of the row


@dataclass(frozen=True, slots=True)
class User:
    """A user as everyone may see it. No password hash here: that stays in the repository
    (its UserCredentials goes only to the login and change-password use cases)."""

    id: UUID
    email: str
    first_name: str | None
    last_name: str | None
    role: str
    is_active: bool
    last_login_time: datetime | None
    create_time: datetime
    update_time: datetime
    etag: str


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: UUID
    event_time: datetime
    actor_kind: str  # USER, SERVICE or ANONYMOUS (libs/audit.py)
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    client_address: str | None
    request_id: str | None
    details: dict


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: UUID
    user_id: UUID
    family_id: UUID
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None

    @property
    def spent(self) -> bool:
        return self.used_at is not None or self.revoked_at is not None


# --- requests, as the servicers hand them over (unvalidated) ------------------------------------

@dataclass(frozen=True)
class SignUp:
    organization_name: str
    organization_slug: str
    email: str
    password: str
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class Login:
    organization_slug: str
    email: str
    password: str


@dataclass(frozen=True)
class UserFields:
    """A request's user. None: the field is not set."""

    email: str = ""
    first_name: str | None = None
    last_name: str | None = None
    role: str | None = None  # a UserRole label; None: UNSPECIFIED
    is_active: bool = False


@dataclass(frozen=True)
class CreateUser:
    user: UserFields
    password: str
    request_id: str = ""


@dataclass(frozen=True)
class UpdateUser:
    id: str
    user: UserFields
    paths: tuple[str, ...]
    etag: str = ""


@dataclass(frozen=True)
class OrganizationFields:
    name: str = ""
    logo_url: str | None = None
    settings: dict | None = None


@dataclass(frozen=True)
class UpdateOrganization:
    organization: OrganizationFields
    paths: tuple[str, ...]
    etag: str = ""


# --- validated requests --------------------------------------------------------------------------

@dataclass(frozen=True)
class NewOrganization:
    name: str
    slug: str
    email: str
    password: str
    first_name: str | None
    last_name: str | None


@dataclass(frozen=True)
class NewUser:
    email: str
    password: str
    first_name: str | None
    last_name: str | None
    role: str
    request_id: UUID | None


@dataclass(frozen=True)
class UserUpdate:
    id: UUID
    changes: dict[str, object]  # masked field → new value
    etag: str

    @property
    def demotes(self) -> bool:
        """Whether the change can take an admin away (role changed away from ADMIN, or deactivated)."""
        return self.changes.get("role", ROLE_ADMIN) != ROLE_ADMIN or self.changes.get("is_active") is False


@dataclass(frozen=True)
class OrganizationUpdate:
    changes: dict[str, object]  # masked field → new value
    etag: str


# --- rules ---------------------------------------------------------------------------------------

def normalize_slug(slug: str, field: str = "organization_slug") -> str:
    slug = slug.strip().lower()
    if not SLUG_LENGTH[0] <= len(slug) <= SLUG_LENGTH[1] or not SLUG_PATTERN.match(slug):
        raise InvalidArgument.field(
            field, f"{SLUG_LENGTH[0]}-{SLUG_LENGTH[1]} characters: lowercase letters, digits, "
                   "single hyphens between them")
    return slug


def check_email(email: str, field: str = "email") -> str:
    """The one form of an email, for sign-up, create user and login alike (see
    libs.validation.normalize_email: trimmed, NFC, lowercased)."""
    return normalize_email(email, field)


def check_password(password: str, email: str | None, field: str = "password") -> None:
    """Length, not the email (when known), not too simple."""
    violations = Violations()
    if not PASSWORD_LENGTH[0] <= len(password) <= PASSWORD_LENGTH[1]:
        violations.add(field, f"must be {PASSWORD_LENGTH[0]} to {PASSWORD_LENGTH[1]} characters")
    elif "\x00" in password:
        violations.add(field, "must not contain NUL characters")
    elif email and password.strip().lower() in (email.lower(), email.split("@")[0].lower()):
        violations.add(field, "must not be the email address")
    elif len(set(password)) < 4:
        violations.add(field, "is too simple")
    violations.raise_if_any(f"invalid {field}")


def check_organization_name(name: str, field: str = "organization_name") -> str:
    name = optional_text(name, field, NAME_MAX)
    if name is None:
        raise InvalidArgument.field(field, f"is required, at most {NAME_MAX} characters")
    return name


def check_grantable_role(role: str | None, field: str = "user.role") -> str:
    if role is None:
        raise InvalidArgument.field(field, "is required (UNSPECIFIED is not allowed)")
    if role not in GRANTABLE_ROLES:
        raise InvalidArgument.field(field, f"must be ADMIN or MANAGER ({role} cannot be granted through this API)")
    return role


def check_logo_url(url: str | None, field: str = "organization.logo_url") -> str | None:
    url = optional_text(url, field, LOGO_URL_MAX) or ""
    if url and not url.startswith(("https://", "http://")):
        raise InvalidArgument.field(field, "must be an http(s) URL")
    return url or None


def validate_sign_up(request: SignUp) -> NewOrganization:
    violations = Violations()
    name = violations.check(check_organization_name, request.organization_name)
    slug = violations.check(normalize_slug, request.organization_slug)
    email = violations.check(check_email, request.email)
    violations.check(check_password, request.password, email)
    first = violations.check(optional_text, request.first_name, "first_name", NAME_MAX)
    last = violations.check(optional_text, request.last_name, "last_name", NAME_MAX)
    violations.raise_if_any("invalid sign-up request")
    return NewOrganization(name, slug, email, request.password, first, last)


def validate_login(request: Login) -> None:
    """Bounded text with no NUL (the only input errors a login reports: anything else fails
    like a wrong password)."""
    violations = Violations()
    violations.check(bounded_text, request.organization_slug, "organization_slug", SLUG_LENGTH[1])
    violations.check(bounded_text, request.email, "email", EMAIL_MAX)
    violations.check(bounded_text, request.password, "password", PASSWORD_LENGTH[1])
    violations.raise_if_any("invalid login request")


def login_slug(slug: str) -> str:
    return slug.strip().lower()


@lru_cache(maxsize=4096)
def login_email(email: str) -> str | None:
    """The email as stored (check_email's form), or None when it cannot be one: the login
    then fails like any other, after the same password work. Remembered for the most recent
    emails: a flood against one account then pays nothing to name it."""
    try:
        return check_email(email)
    except InvalidArgument:
        return None


def validate_new_user(request: CreateUser) -> NewUser:
    violations = Violations()
    email = violations.check(check_email, request.user.email, "user.email")
    violations.check(check_password, request.password, email)
    first = violations.check(optional_text, request.user.first_name, "user.first_name", NAME_MAX)
    last = violations.check(optional_text, request.user.last_name, "user.last_name", NAME_MAX)
    role = violations.check(check_grantable_role, request.user.role or DEFAULT_ROLE)
    request_id = violations.check(optional_uuid, request.request_id, "request_id")
    violations.raise_if_any("invalid user")
    return NewUser(email, request.password, first, last, role, request_id)


def validate_user_update(request: UpdateUser) -> UserUpdate:
    """AIP-134: the mask is required and names updatable fields only (email and password
    have their own ways; the role cannot become SUPER_ADMIN)."""
    violations = Violations()
    user_id = violations.check(parse_uuid, request.id, "user.id")
    violations.check(mask_paths, request.paths, USER_UPDATABLE)
    changes: dict[str, object] = {}
    for path in dict.fromkeys(request.paths):
        if path in ("first_name", "last_name"):
            changes[path] = violations.check(optional_text, getattr(request.user, path), f"user.{path}", NAME_MAX)
        elif path == "role":
            changes[path] = violations.check(check_grantable_role, request.user.role)
        elif path == "is_active":
            changes[path] = request.user.is_active
    violations.check(etag, request.etag, "user.etag")
    violations.raise_if_any("invalid user update")
    return UserUpdate(user_id, changes, request.etag)


def validate_organization_update(request: UpdateOrganization) -> OrganizationUpdate:
    violations = Violations()
    violations.check(mask_paths, request.paths, ORGANIZATION_UPDATABLE)
    organization = request.organization
    changes: dict[str, object] = {}
    for path in dict.fromkeys(request.paths):
        if path == "name":
            changes[path] = violations.check(check_organization_name, organization.name, "organization.name")
        elif path == "logo_url":
            changes[path] = violations.check(check_logo_url, organization.logo_url)
        elif path == "settings":
            changes[path] = violations.check(json_object_text, organization.settings or {}, "organization.settings")
    violations.check(etag, request.etag, "organization.etag")
    violations.raise_if_any("invalid organization update")
    return OrganizationUpdate(changes, request.etag)


def check_old_password(old_password: str) -> None:
    bounded_text(old_password, "old_password", PASSWORD_LENGTH[1])


def validate_password_change(old_password_ok: bool, new_password: str, email: str) -> None:
    violations = Violations()
    if not old_password_ok:
        violations.add("old_password", "does not match the current password")
    violations.check(check_password, new_password, email, "new_password")
    violations.raise_if_any("invalid password change")


def parse_refresh_token(token: str) -> tuple[UUID, str]:
    """A refresh token is `<organization id>.<secret>`: (the organization, the secret)."""
    bounded_text(token, "refresh_token", REFRESH_TOKEN_MAX)
    org, _, secret = token.partition(".")
    try:
        return UUID(org), secret
    except ValueError:
        raise InvalidArgument.field("refresh_token", "is not a refresh token") from None


def parse_organization_id(value: str) -> UUID:
    return parse_uuid(value, "organization_id")


def validate_service_token_request(organization_id: str, service_name: str, assertion: str) -> None:
    """An organization id, bounded text with no NUL; whether they are right is the assertion's check."""
    violations = Violations()
    violations.check(parse_uuid, organization_id, "organization_id")
    violations.check(bounded_text, service_name, "service_name", SERVICE_NAME_MAX)
    violations.check(bounded_text, assertion, "assertion", ASSERTION_MAX)
    violations.raise_if_any("invalid service token request")


def check_changeable(user: User) -> None:
    if user.role == ROLE_SUPER_ADMIN:
        raise PermissionDenied("a platform super admin cannot be changed here", reason="SUPER_ADMIN")


def check_keeps_an_admin(active_admins: list[UUID], demoted: UUID) -> None:
    """The organization must keep at least one active admin."""
    if active_admins == [demoted]:
        raise FailedPrecondition("the organization must keep at least one active admin", reason="LAST_ADMIN")


def refresh_allowed(token: RefreshToken, user: User | None, now: datetime) -> bool:
    """A refresh token works once, before it expires, for a user who is still active."""
    return not token.spent and token.expires_at > now and user is not None and user.is_active


# --- limits ----------------------------------------------------------------------------------
# Each limited thing is a key: a scope and what it counts by. The limiter stores only the
# key's SHA-256 digest, never the email or address itself.

LOGIN_ACCOUNT = "login.account"
LOGIN_ADDRESS = "login.address"
SIGN_UP_ADDRESS = "sign_up.address"
REFRESH_ADDRESS = "refresh.address"
REFRESH_FAMILY = "refresh.family"
CHANGE_PASSWORD_USER = "change_password.user"
SERVICE_TOKEN = "service_token"


def limit_key(scope: str, *parts: object) -> bytes:
    return hashlib.sha256("\x1f".join([scope, *map(str, parts)]).encode()).digest()


def login_account_key(slug: str, email: str | None, raw_email: str) -> bytes:
    """One account, whether it exists or not (so a lock says nothing about existence): the
    slug as looked up and the email as stored, or as typed when it cannot be an email."""
    return limit_key(LOGIN_ACCOUNT, slug, email if email is not None else raw_email.strip().lower())


@dataclass(frozen=True)
class LimitVerdict:
    retry_after: timedelta  # zero: go ahead
    scope: str | None = None  # the limit that refused
    locked_now: bool = False  # this attempt used the last one up and started the lock
    key: bytes | None = None  # the key that refused

    @property
    def refused(self) -> bool:
        return self.retry_after > timedelta(0)


class LockCache:
    """The locks this process has been told about, so that a flood against a locked key is
    refused without a database round trip. Safe to believe: a lock only ever ends when its
    time is up (a success could clear it, but no attempt gets through while it lasts), and
    the database stays the truth every process shares. An entry is believed for at most
    `max_age` seconds (then the database is asked again, which bounds how long an operator's
    unlock goes unseen) and at most `size` keys are kept. Times are time.monotonic() values."""

    def __init__(self, max_age: float = 1.0, size: int = 10_000) -> None:
        self.max_age = max_age
        self.size = size
        self._entries: OrderedDict[bytes, tuple[float, float, str]] = OrderedDict()  # key -> (ends, stale, scope)

    def remember(self, verdict: LimitVerdict, now: float) -> None:
        if self.max_age <= 0 or verdict.key is None or not verdict.refused:
            return
        ends = now + verdict.retry_after.total_seconds()
        self._entries[verdict.key] = (ends, now + self.max_age, verdict.scope or "")
        self._entries.move_to_end(verdict.key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def refusal(self, checks: Sequence[tuple[str, bytes, object]], now: float) -> LimitVerdict | None:
        """The refusal of the first of `checks` whose key is known to be locked, if any."""
        for _, key, _ in checks:
            entry = self._entries.get(key)
            if entry is None:
                continue
            ends, stale, scope = entry
            if now < ends and now < stale:
                return LimitVerdict(timedelta(seconds=ends - now), scope, key=key)
            del self._entries[key]
        return None


def too_many_attempts(verdict: LimitVerdict) -> ResourceExhausted:
    seconds = max(1, int(-(-verdict.retry_after.total_seconds() // 1)))
    return ResourceExhausted(f"too many attempts; retry in {seconds} s", reason="TOO_MANY_ATTEMPTS",
                             retry_after=verdict.retry_after, metadata={"limit": verdict.scope or ""})


# --- audit --------------------------------------------------------------------------------------

def user_update_events(before: User, changes: dict[str, object]) -> list[tuple[str, dict]]:
    """The audit events (action, details) of an update of `before` with `changes`."""
    events: list[tuple[str, dict]] = []
    if "role" in changes and changes["role"] != before.role:
        events.append(("user.role_changed", {"from": before.role, "to": changes["role"]}))
    if "is_active" in changes and changes["is_active"] != before.is_active:
        events.append(("user.deactivated" if not changes["is_active"] else "user.reactivated", {}))
    named = [name for name in ("first_name", "last_name") if name in changes and changes[name] != getattr(before, name)]
    if named:
        events.append(("user.updated", {"fields": named}))
    return events


# --- errors the repository raises for constraint violations ------------------------------------

def slug_taken(slug: str) -> AlreadyExists:
    return AlreadyExists(f"organization slug '{slug}' is taken", reason="SLUG_TAKEN", metadata={"slug": slug})


def email_taken() -> AlreadyExists:
    return AlreadyExists("a user with this email exists in the organization", reason="EMAIL_TAKEN")


# --- passwords -----------------------------------------------------------------------------------

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
