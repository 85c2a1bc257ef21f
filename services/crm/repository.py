"""crm's data access: plain SQL over asyncpg inside TenantDatabase transactions (RLS-scoped)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

CLIENT_COLUMNS = ("id, phone, email, first_name, last_name, status::text AS status, preferred_language, "
                  "cultural_context::text AS cultural_context, metadata::text AS metadata, assigned_partner_id, "
                  "prompt_variant_id, created_at, updated_at")
HISTORY_COLUMNS = ("id, client_id, old_status::text AS old_status, new_status::text AS new_status, "
                   "changed_by::text AS changed_by, changed_by_user_id, "
                   "changed_by_agent_type::text AS changed_by_agent_type, reason, created_at")
# Row-level security already limits every statement to the caller's organization. Saying it
# in the SQL too keeps each query correct and index-friendly on its own: the same text runs
# unchanged under a BYPASSRLS role (the benchmark's RLS-cost baseline) and for the planner
# it is the primary key's leading column either way.
IN_ORG = "organization_id = (SELECT app.current_org())"
# Columns a create or update may set, with the SQL cast of their parameter.
WRITABLE = {"phone": "", "email": "", "first_name": "", "last_name": "", "preferred_language": "",
            "cultural_context": "::jsonb", "metadata": "::jsonb", "assigned_partner_id": "::uuid",
            "prompt_variant_id": "::uuid"}


async def insert_client(conn: asyncpg.Connection, org_id: UUID, values: dict) -> asyncpg.Record:
    columns = ["organization_id", *values]
    placeholders = ["$1", *(f"${i + 2}{WRITABLE[c]}" for i, c in enumerate(values))]
    return await conn.fetchrow(
        f"INSERT INTO clients ({', '.join(columns)}) VALUES ({', '.join(placeholders)}) RETURNING {CLIENT_COLUMNS}",
        org_id, *values.values())


async def insert_client_if_absent(conn: asyncpg.Connection, org_id: UUID, values: dict) -> asyncpg.Record | None:
    """The new client, or None when the phone is taken (waits for a racing insert to finish)."""
    columns = ["organization_id", *values]
    placeholders = ["$1", *(f"${i + 2}{WRITABLE[c]}" for i, c in enumerate(values))]
    return await conn.fetchrow(
        f"""INSERT INTO clients ({', '.join(columns)}) VALUES ({', '.join(placeholders)})
            ON CONFLICT (organization_id, phone) DO NOTHING RETURNING {CLIENT_COLUMNS}""",
        org_id, *values.values())


async def get_client(conn: asyncpg.Connection, client_id: UUID, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {CLIENT_COLUMNS} FROM clients WHERE {IN_ORG} AND id = $1{lock}", client_id)


async def get_client_by_phone(conn: asyncpg.Connection, phone: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {CLIENT_COLUMNS} FROM clients WHERE {IN_ORG} AND phone = $1", phone)


async def update_client(conn: asyncpg.Connection, client_id: UUID, changes: dict) -> asyncpg.Record | None:
    assignments = [f"{c} = ${i + 2}{WRITABLE[c]}" for i, c in enumerate(changes)]
    return await conn.fetchrow(
        f"UPDATE clients SET {', '.join(assignments)} WHERE {IN_ORG} AND id = $1 RETURNING {CLIENT_COLUMNS}",
        client_id, *changes.values())


async def set_status(conn: asyncpg.Connection, client_id: UUID, status: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE clients SET status = $2::client_status WHERE {IN_ORG} AND id = $1 RETURNING {CLIENT_COLUMNS}",
        client_id, status)


async def delete_client(conn: asyncpg.Connection, client_id: UUID) -> bool:
    return await conn.fetchval(f"DELETE FROM clients WHERE {IN_ORG} AND id = $1 RETURNING true", client_id) is not None


async def list_clients(conn: asyncpg.Connection, *, order_column: str, descending: bool, where: str,
                       params: list, after: tuple | None, limit: int) -> list[asyncpg.Record]:
    """One keyset page. `where` uses parameters from $1; the keyset and limit come after them."""
    conditions = [IN_ORG, where] if where else [IN_ORG]
    args = list(params)
    direction = "DESC" if descending else "ASC"
    if after is not None:
        compare = "<" if descending else ">"
        args += [after[0], after[1]]
        a, b = len(args) - 1, len(args)
        conditions.append(f"({order_column}, id) {compare} (${a}, ${b})")
    args.append(limit)
    return await conn.fetch(
        f"""SELECT {CLIENT_COLUMNS} FROM clients WHERE {' AND '.join(conditions)}
            ORDER BY {order_column} {direction}, id {direction} LIMIT ${len(args)}""", *args)


async def insert_history(conn: asyncpg.Connection, org_id: UUID, client_id: UUID, old_status: str | None,
                         new_status: str, changed_by: str, user_id: UUID | None, agent_type: str | None,
                         reason: str | None) -> None:
    # clock_timestamp(), not now(): the row is written while the client row is locked, so
    # history times follow the order in which concurrent changes really happened.
    await conn.execute(
        """INSERT INTO client_status_history (organization_id, client_id, old_status, new_status, changed_by,
               changed_by_user_id, changed_by_agent_type, reason, created_at)
           VALUES ($1, $2, $3::client_status, $4::client_status, $5::status_changed_by, $6, $7::agent_type, $8,
                   clock_timestamp())""",
        org_id, client_id, old_status, new_status, changed_by, user_id, agent_type, reason)


async def list_history(conn: asyncpg.Connection, client_id: UUID, after: tuple | None,
                       limit: int) -> list[asyncpg.Record]:
    """Newest first, keyset on (created_at, id)."""
    if after is None:
        return await conn.fetch(
            f"""SELECT {HISTORY_COLUMNS} FROM client_status_history WHERE {IN_ORG} AND client_id = $1
                ORDER BY created_at DESC, id DESC LIMIT $2""", client_id, limit)
    return await conn.fetch(
        f"""SELECT {HISTORY_COLUMNS} FROM client_status_history
            WHERE {IN_ORG} AND client_id = $1 AND (created_at, id) < ($2, $3)
            ORDER BY created_at DESC, id DESC LIMIT $4""", client_id, after[0], after[1], limit)
