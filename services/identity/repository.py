"""identity's data access: plain SQL over asyncpg, always inside a TenantDatabase transaction
(so row-level security scopes every statement to one organization)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from uuid import UUID

import asyncpg

ORG_COLUMNS = "id, name, slug, logo, settings::text AS settings, created_at, updated_at"
USER_COLUMNS = ("id, email, first_name, last_name, role::text AS role, is_active, last_login_at, "
                "created_at, updated_at")


# --- organizations -----------------------------------------------------------------------

async def organization_id_by_slug(conn: asyncpg.Connection, slug: str) -> UUID | None:
    return await conn.fetchval("SELECT auth.organization_id_by_slug($1)", slug)


async def create_organization(conn: asyncpg.Connection, org_id: UUID, name: str, slug: str) -> asyncpg.Record:
    await conn.execute("SELECT auth.create_organization($1, $2, $3)", org_id, name, slug)
    return await get_organization(conn, org_id)


async def get_organization(conn: asyncpg.Connection, org_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {ORG_COLUMNS} FROM organizations WHERE id = $1", org_id)


async def update_organization(conn: asyncpg.Connection, org_id: UUID, changes: dict) -> asyncpg.Record | None:
    columns = {"name": "name = ${}", "logo": "logo = ${}", "settings": "settings = ${}::jsonb"}
    assignments, values = [], []
    for key, value in changes.items():
        values.append(value)
        assignments.append(columns[key].format(len(values) + 1))
    return await conn.fetchrow(
        f"UPDATE organizations SET {', '.join(assignments)} WHERE id = $1 RETURNING {ORG_COLUMNS}",
        org_id, *values)


# --- users ---------------------------------------------------------------------------------

async def insert_user(conn: asyncpg.Connection, org_id: UUID, email: str, password_hash: str,
                      first_name: str | None, last_name: str | None, role: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO users (organization_id, email, password_hash, first_name, last_name, role)
            VALUES ($1, $2, $3, $4, $5, $6::user_role) RETURNING {USER_COLUMNS}""",
        org_id, email, password_hash, first_name, last_name, role)


async def get_user(conn: asyncpg.Connection, user_id: UUID, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE id = $1{lock}", user_id)


async def get_user_by_email(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1", email)


async def list_users(conn: asyncpg.Connection, limit: int, after: tuple[datetime, UUID] | None) -> list[asyncpg.Record]:
    """Oldest first, keyset on (created_at, id)."""
    if after is None:
        return await conn.fetch(f"SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT $1", limit)
    return await conn.fetch(
        f"""SELECT {USER_COLUMNS} FROM users WHERE (created_at, id) > ($2, $3)
            ORDER BY created_at, id LIMIT $1""", limit, after[0], after[1])


async def update_user(conn: asyncpg.Connection, user_id: UUID, changes: dict) -> asyncpg.Record | None:
    columns = {"first_name": "first_name = ${}", "last_name": "last_name = ${}",
               "role": "role = ${}::user_role", "is_active": "is_active = ${}",
               "password_hash": "password_hash = ${}", "last_login_at": "last_login_at = ${}"}
    assignments, values = [], []
    for key, value in changes.items():
        values.append(value)
        assignments.append(columns[key].format(len(values) + 1))
    return await conn.fetchrow(
        f"UPDATE users SET {', '.join(assignments)} WHERE id = $1 RETURNING {USER_COLUMNS}", user_id, *values)


async def lock_active_admins(conn: asyncpg.Connection) -> list[UUID]:
    """The organization's active admins, locked: concurrent demotions queue up here."""
    rows = await conn.fetch("SELECT id FROM users WHERE role = 'ADMIN' AND is_active ORDER BY id FOR UPDATE")
    return [row["id"] for row in rows]


# --- refresh tokens ------------------------------------------------------------------------

def hash_refresh_secret(secret: str) -> bytes:
    # The secret has 256 bits of entropy: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).digest()


async def insert_refresh_token(conn: asyncpg.Connection, org_id: UUID, user_id: UUID, family_id: UUID,
                               secret: str, expires_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO refresh_tokens (organization_id, user_id, family_id, token_hash, expires_at)
           VALUES ($1, $2, $3, $4, $5)""", org_id, user_id, family_id, hash_refresh_secret(secret), expires_at)


async def claim_refresh_token(conn: asyncpg.Connection, secret: str) -> asyncpg.Record | None:
    """The token row, locked so that two concurrent refreshes with it cannot both succeed."""
    return await conn.fetchrow(
        """SELECT id, user_id, family_id, expires_at, used_at, revoked_at FROM refresh_tokens
           WHERE token_hash = $1 FOR UPDATE""", hash_refresh_secret(secret))


async def mark_refresh_token_used(conn: asyncpg.Connection, token_id: UUID) -> None:
    await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", token_id)


async def revoke_family(conn: asyncpg.Connection, family_id: UUID) -> None:
    await conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
                       family_id)


async def revoke_user_tokens(conn: asyncpg.Connection, user_id: UUID) -> None:
    await conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
                       user_id)
