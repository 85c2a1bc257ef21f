"""identity's data access: all of identity's SQL (plain SQL over asyncpg, always inside a
TenantDatabase transaction) and the translation of constraint violations into domain
errors. Returns entities (services/identity/domain.py).

Every statement states the organization (`IN_ORG`; `ORG_ROW` for the organization's own
row) although row-level security already enforces it: see libs/persistence.py. The two
lookups made before there is an organization (by slug, at login) and the creation of one
(at sign-up) go through SECURITY DEFINER functions (migrations/versions/0002).

Password hashes never leave this module except inside `UserCredentials`, which only the
login and change-password use cases ask for. `User` has no hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import asyncpg

from libs.filtering import EQUALITY, ORDERING, FilterField, compile_filter, to_enum_label, to_timestamp
from libs.persistence import IN_ORG, ORG_ROW, PageRequest, etag_of, keyset_after, update_sql
from services.identity import domain
from services.identity.domain import AuditEvent, LimitVerdict, Organization, RefreshToken, User

ORG_COLUMNS = "id, name, slug, logo, settings::text AS settings, created_at, updated_at"
USER_COLUMNS = ("id, email, first_name, last_name, role::text AS role, is_active, last_login_at, "
                "created_at, updated_at")
# Updatable fields (the domain's names) → (column, SQL cast of the parameter).
_ORG_FIELDS = {"name": ("name", ""), "logo_url": ("logo", ""), "settings": ("settings", "::jsonb")}
_USER_FIELDS = {"first_name": ("first_name", ""), "last_name": ("last_name", ""), "role": ("role", "::user_role"),
                "is_active": ("is_active", ""), "password_hash": ("password_hash", ""),
                "last_login_at": ("last_login_at", "")}
_ORG_CASTS = dict(_ORG_FIELDS.values())
_USER_CASTS = dict(_USER_FIELDS.values())

_SLUG_UNIQUE = "uq_organizations_slug"
_EMAIL_UNIQUE = "uq_users_organization_id_email"

_GET_ORG = f"SELECT {ORG_COLUMNS} FROM organizations WHERE {ORG_ROW}"
_USER = f"SELECT {USER_COLUMNS} FROM users WHERE {IN_ORG}"
_CREDENTIALS = f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE {IN_ORG}"
_GET_USER = f"{_USER} AND id = $1"
_GET_USER_FOR_UPDATE = _GET_USER + " FOR UPDATE"
_LIST_USERS_FIRST = f"{_USER} ORDER BY created_at, id LIMIT $1"
_LIST_USERS_AFTER = f"{_USER} AND {keyset_after(('created_at', 'id'), False, 2)} ORDER BY created_at, id LIMIT $1"
_TOKEN_COLUMNS = "id, user_id, family_id, expires_at, used_at, revoked_at"


@dataclass(frozen=True, slots=True)
class UserCredentials:
    """A user with their password hash: for verifying a password (login, change password)
    and nothing else. The hash is left out of repr, so it cannot reach a log line."""

    user: User
    password_hash: str = field(repr=False)


# --- records → entities ------------------------------------------------------------------------

def _organization(row: asyncpg.Record | None) -> Organization | None:
    if row is None:
        return None
    id_, name, slug, logo, settings, created_at, updated_at = row
    value = json.loads(settings) if settings is not None else None
    return Organization(id_, name, slug, logo, value if isinstance(value, dict) else None, created_at, updated_at,
                        etag_of(updated_at))


def _user(row: asyncpg.Record | None) -> User | None:
    if row is None:
        return None
    id_, email, first_name, last_name, role, is_active, last_login_at, created_at, updated_at, *_ = row
    return User(id_, email, first_name, last_name, role, is_active, last_login_at, created_at, updated_at,
                etag_of(updated_at))


def _credentials(row: asyncpg.Record | None) -> UserCredentials | None:
    return UserCredentials(_user(row), row["password_hash"]) if row is not None else None


def _columns(changes: dict[str, object], fields: dict[str, tuple[str, str]]) -> dict[str, object]:
    return {fields[name][0]: value for name, value in changes.items()}


# --- organizations -----------------------------------------------------------------------

async def organization_id_by_slug(conn: asyncpg.Connection, slug: str) -> UUID | None:
    """Before login there is no organization yet: a SECURITY DEFINER lookup by slug."""
    return await conn.fetchval("SELECT auth.organization_id_by_slug($1)", slug)


async def enter_organization_by_slug(conn: asyncpg.Connection, slug: str) -> UUID | None:
    """Login, in a transaction begun with no organization: the slug's organization (None when
    there is none), which the rest of the transaction then runs as (transaction-local, like
    every organization setting), so the user's row is read under its policies in the same
    transaction. Saves the login a second transaction."""
    return await conn.fetchval(
        "SELECT o.id FROM auth.organization_id_by_slug($1) AS o(id), "
        "LATERAL set_config('app.current_organization_id', coalesce(o.id::text, ''), true)", slug)


async def create_organization(conn: asyncpg.Connection, org_id: UUID, name: str, slug: str) -> Organization:
    """The transaction's organization (`org_id` must be it). SLUG_TAKEN when the slug is taken."""
    try:
        await conn.execute("SELECT auth.create_organization($1, $2, $3)", org_id, name, slug)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == _SLUG_UNIQUE:
            raise domain.slug_taken(slug) from None
        raise
    return await get_organization(conn)


async def get_organization(conn: asyncpg.Connection, *, for_update: bool = False) -> Organization | None:
    """The transaction's organization."""
    return _organization(await conn.fetchrow(_GET_ORG + (" FOR UPDATE" if for_update else "")))


async def update_organization(conn: asyncpg.Connection, changes: dict[str, object]) -> Organization | None:
    """The masked fields (the domain's names: name, logo_url, settings as JSON text) set."""
    sql, args = update_sql("organizations", _columns(changes, _ORG_FIELDS), _ORG_CASTS, returning=ORG_COLUMNS,
                           where=ORG_ROW, key_params=0)
    return _organization(await conn.fetchrow(sql, *args))


# --- users ---------------------------------------------------------------------------------

async def insert_user(conn: asyncpg.Connection, email: str, password_hash: str, first_name: str | None,
                      last_name: str | None, role: str) -> User:
    """A new user of the transaction's organization. EMAIL_TAKEN when the email is taken."""
    try:
        return _user(await conn.fetchrow(
            f"""INSERT INTO users (organization_id, email, password_hash, first_name, last_name, role)
                VALUES ((SELECT app.current_org()), $1, $2, $3, $4, $5::user_role) RETURNING {USER_COLUMNS}""",
            email, password_hash, first_name, last_name, role))
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == _EMAIL_UNIQUE:
            raise domain.email_taken() from None
        raise


async def get_user(conn: asyncpg.Connection, user_id: UUID, *, for_update: bool = False) -> User | None:
    return _user(await conn.fetchrow(_GET_USER_FOR_UPDATE if for_update else _GET_USER, user_id))


async def get_credentials(conn: asyncpg.Connection, user_id: UUID) -> UserCredentials | None:
    return _credentials(await conn.fetchrow(f"{_CREDENTIALS} AND id = $1", user_id))


async def get_credentials_by_email(conn: asyncpg.Connection, email: str) -> UserCredentials | None:
    """`email` in domain.check_email's form (the form it is stored in)."""
    return _credentials(await conn.fetchrow(f"{_CREDENTIALS} AND email = $1", email))


async def list_users(conn: asyncpg.Connection, page: PageRequest) -> list[User]:
    """Oldest first, keyset on (created_at, id)."""
    if page.after is None:
        rows = await conn.fetch(_LIST_USERS_FIRST, page.limit)
    else:
        rows = await conn.fetch(_LIST_USERS_AFTER, page.limit, *page.after)
    return [_user(row) for row in rows]


async def update_user(conn: asyncpg.Connection, user_id: UUID, changes: dict[str, object]) -> User | None:
    """The masked fields (first_name, last_name, role, is_active) set."""
    sql, args = update_sql("users", _columns(changes, _USER_FIELDS), _USER_CASTS, returning=USER_COLUMNS)
    return _user(await conn.fetchrow(sql, user_id, *args))


async def record_login(conn: asyncpg.Connection, user_id: UUID, at: datetime,
                       new_password_hash: str | None = None) -> User | None:
    """The login time, and the password's new hash when it was rehashed."""
    changes: dict[str, object] = {"last_login_at": at}
    if new_password_hash is not None:
        changes["password_hash"] = new_password_hash
    return await update_user(conn, user_id, changes)


async def set_password_hash(conn: asyncpg.Connection, user_id: UUID, password_hash: str) -> None:
    await update_user(conn, user_id, {"password_hash": password_hash})


async def lock_active_admins(conn: asyncpg.Connection) -> list[UUID]:
    """The organization's active admins, locked: concurrent demotions queue up here."""
    rows = await conn.fetch(f"SELECT id FROM users WHERE {IN_ORG} AND role = 'ADMIN' AND is_active "
                            "ORDER BY id FOR UPDATE")
    return [row["id"] for row in rows]


# --- refresh tokens ------------------------------------------------------------------------

def hash_refresh_secret(secret: str) -> bytes:
    # The secret has 256 bits of entropy: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).digest()


async def insert_refresh_token(conn: asyncpg.Connection, user_id: UUID, family_id: UUID, secret: str,
                               expires_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO refresh_tokens (organization_id, user_id, family_id, token_hash, expires_at)
           VALUES ((SELECT app.current_org()), $1, $2, $3, $4)""",
        user_id, family_id, hash_refresh_secret(secret), expires_at)


async def claim_refresh_token(conn: asyncpg.Connection, secret: str) -> RefreshToken | None:
    """The token, locked so that two concurrent refreshes with it cannot both succeed."""
    row = await conn.fetchrow(
        f"SELECT {_TOKEN_COLUMNS} FROM refresh_tokens WHERE {IN_ORG} AND token_hash = $1 FOR UPDATE",
        hash_refresh_secret(secret))
    return RefreshToken(*row) if row is not None else None


async def mark_refresh_token_used(conn: asyncpg.Connection, token_id: UUID) -> None:
    await conn.execute(f"UPDATE refresh_tokens SET used_at = now() WHERE {IN_ORG} AND id = $1", token_id)


async def revoke_family(conn: asyncpg.Connection, family_id: UUID) -> None:
    await conn.execute(f"UPDATE refresh_tokens SET revoked_at = now() WHERE {IN_ORG} AND family_id = $1 "
                       "AND revoked_at IS NULL", family_id)


async def revoke_user_tokens(conn: asyncpg.Connection, user_id: UUID) -> None:
    await conn.execute(f"UPDATE refresh_tokens SET revoked_at = now() WHERE {IN_ORG} AND user_id = $1 "
                       "AND revoked_at IS NULL", user_id)


# --- limits (auth_limits, through auth.limit_attempt / auth.limit_settle: migrations/0006) ---------

class Limit(Protocol):
    """A limit's numbers (libs.settings.RateLimit)."""

    attempts: int
    window_seconds: float
    lock_seconds: float
    max_lock_seconds: float


_LIMIT_ATTEMPT = "SELECT retry_after, key_index, locked_now FROM auth.limit_attempt($1, $2, $3, $4, $5)"


async def limit_attempt(conn: asyncpg.Connection, checks: Sequence[tuple[str, bytes, Limit]]) -> LimitVerdict:
    """Count one attempt against each (scope, key, limit); the verdict names the scope that
    refused it, if any. A refusal must be committed (it may have started a lock)."""
    if not checks:
        return LimitVerdict(timedelta(0))
    row = await conn.fetchrow(
        _LIMIT_ATTEMPT, [key for _, key, _ in checks], [limit.attempts for _, _, limit in checks],
        [timedelta(seconds=limit.window_seconds) for _, _, limit in checks],
        [timedelta(seconds=limit.lock_seconds) for _, _, limit in checks],
        [timedelta(seconds=limit.max_lock_seconds) for _, _, limit in checks])
    retry_after, index, locked_now = row
    if retry_after <= timedelta(0):
        return LimitVerdict(timedelta(0))
    scope, key, _ = checks[index - 1]
    return LimitVerdict(retry_after, scope, locked_now, key)


async def limit_settle(conn: asyncpg.Connection, clear: Sequence[bytes] = (), refund: Sequence[bytes] = ()) -> None:
    """After a success: forget the `clear` keys' counts, give one attempt back to `refund`'s."""
    if clear or refund:
        await conn.execute("SELECT auth.limit_settle($1, $2)", list(clear), list(refund))


# --- service assertions ----------------------------------------------------------------------

async def remember_assertion(conn: asyncpg.Connection, service_name: str, jti: str, expires_at: datetime) -> bool:
    """True the first time this service's assertion `jti` is seen in the organization (until
    it expires); False for a replay. Of two racing exchanges, the second waits for the
    first's transaction and sees False when it commits. Expired entries are dropped here."""
    await conn.execute(f"DELETE FROM service_assertions WHERE {IN_ORG} AND expires_at < now()")
    return bool(await conn.fetchval(
        """INSERT INTO service_assertions (organization_id, service_name, jti, expires_at)
           VALUES ((SELECT app.current_org()), $1, $2, $3)
           ON CONFLICT (organization_id, service_name, jti) DO NOTHING RETURNING true""",
        service_name, jti, expires_at))


# --- audit events (written through libs/audit.py; read here) --------------------------------------

AUDIT_COLUMNS = ("id, created_at, actor_kind, actor_id, action, target_type, target_id, "
                 "host(client_address) AS client_address, request_id, details::text AS details")
ACTOR_KINDS = frozenset({"USER", "SERVICE", "ANONYMOUS"})
# ListAuditEvents' filter (the proto and the README list them).
AUDIT_FILTER_FIELDS = {
    "actor_kind": FilterField("actor_kind", EQUALITY, to_enum_label(ACTOR_KINDS, "ACTOR_KIND_")),
    "actor_id": FilterField("actor_id", EQUALITY, str),
    "action": FilterField("action", EQUALITY, str),
    "target_type": FilterField("target_type", EQUALITY, str),
    "target_id": FilterField("target_id", EQUALITY, str),
    "event_time": FilterField("created_at", ORDERING, to_timestamp),
}


@dataclass(frozen=True)
class AuditQuery:
    """A compiled ListAuditEvents filter (no I/O: compiled before the transaction)."""

    where: str  # "" or a condition with parameters from $1
    params: list


def compile_audit_query(filter_text: str) -> AuditQuery:
    return AuditQuery(*compile_filter(filter_text, AUDIT_FILTER_FIELDS, first_param=1))


def _audit_event(row: asyncpg.Record) -> AuditEvent:
    id_, created_at, kind, actor_id, action, target_type, target_id, address, request_id, details = row
    value = json.loads(details)
    return AuditEvent(id_, created_at, kind, actor_id, action, target_type, target_id, address, request_id,
                      value if isinstance(value, dict) else {})


async def list_audit_events(conn: asyncpg.Connection, query: AuditQuery, page: PageRequest) -> list[AuditEvent]:
    """Newest first, keyset on (created_at, id)."""
    conditions = [IN_ORG, query.where] if query.where else [IN_ORG]
    args = list(query.params)
    if page.after is not None:
        conditions.append(keyset_after(("created_at", "id"), True, len(args) + 1))
        args += page.after
    args.append(page.limit)
    rows = await conn.fetch(
        f"SELECT {AUDIT_COLUMNS} FROM audit_events WHERE {' AND '.join(conditions)} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}", *args)
    return [_audit_event(row) for row in rows]
