"""crm's data access: all of crm's SQL (plain SQL over asyncpg, inside TenantDatabase
transactions), the compilation of list filters and orders, and the translation of
constraint violations into domain errors. Returns entities (services/crm/domain.py).

Every statement states the organization (`IN_ORG`, or `(SELECT app.current_org())` for an
insert) although row-level security already enforces it: see libs/persistence.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from libs.filtering import (
    EQUALITY,
    ORDERING,
    FilterField,
    compile_filter,
    to_enum_label,
    to_like_pattern,
    to_timestamp,
    to_uuid,
)
from libs.persistence import IN_ORG, PageRequest, etag_of, insert_sql, keyset_after, order_by, update_sql
from libs.tenancy.database import ReadConnection
from services.crm import domain
from services.crm.domain import Client, StatusChange

__all__ = ["CLIENT_COLUMNS", "IN_ORG"]  # and the functions below

CLIENT_COLUMNS = ("id, phone, email, first_name, last_name, status::text AS status, preferred_language, "
                  "cultural_context::text AS cultural_context, metadata::text AS metadata, assigned_partner_id, "
                  "prompt_variant_id, created_at, updated_at")
HISTORY_COLUMNS = ("id, client_id, old_status::text AS old_status, new_status::text AS new_status, "
                   "changed_by::text AS changed_by, changed_by_user_id, "
                   "changed_by_agent_type::text AS changed_by_agent_type, reason, created_at")
# domain.WRITABLE's fields → the SQL cast of their parameter (a test checks both lists agree).
WRITABLE = {"phone": "", "email": "", "first_name": "", "last_name": "", "preferred_language": "",
            "cultural_context": "::jsonb", "metadata": "::jsonb", "assigned_partner_id": "::uuid",
            "prompt_variant_id": "::uuid"}

# ListClients: each of domain.FILTERABLE as SQL.
FILTER_FIELDS = {
    "status": FilterField("status", EQUALITY, to_enum_label(domain.CLIENT_STATUSES, "CLIENT_STATUS_")),
    "preferred_language": FilterField("preferred_language", EQUALITY,
                                      lambda v: domain.check_language(v, "filter")),
    "assigned_partner_id": FilterField("assigned_partner_id", EQUALITY, to_uuid),
    "prompt_variant_id": FilterField("prompt_variant_id", EQUALITY, to_uuid),
    "create_time": FilterField("created_at", ORDERING, to_timestamp),
    "update_time": FilterField("updated_at", ORDERING, to_timestamp),
    "search": FilterField("(phone LIKE {p} OR email ILIKE {p} OR first_name ILIKE {p} OR last_name ILIKE {p} "
                          "OR (first_name || ' ' || last_name) ILIKE {p})", frozenset({"=", ":"}),
                          to_like_pattern, template=True),
}
# The Client fields domain.ORDERINGS sorts on → their columns.
ORDER_COLUMNS = {"create_time": "created_at", "update_time": "updated_at"}

# Constraints a client write can break → the domain error.
_PHONE_UNIQUE = "uq_clients_organization_id_phone"
_REFERENCES = {"fk_clients_assigned_partner_id": "assigned_partner_id",
               "fk_clients_prompt_variant_id": "prompt_variant_id"}

_GET = f"SELECT {CLIENT_COLUMNS} FROM clients WHERE {IN_ORG} AND id = $1"
_GET_FOR_UPDATE = _GET + " FOR UPDATE"
_GET_BY_PHONE = f"SELECT {CLIENT_COLUMNS} FROM clients WHERE {IN_ORG} AND phone = $1"
_SET_STATUS = (f"UPDATE clients SET status = $2::client_status WHERE {IN_ORG} AND id = $1 "
               f"RETURNING {CLIENT_COLUMNS}")
_DELETE = f"DELETE FROM clients WHERE {IN_ORG} AND id = $1 RETURNING id"
# clock_timestamp(), not now(): the row is written while the client row is locked, so
# history times follow the order in which concurrent changes really happened.
_INSERT_HISTORY = """INSERT INTO client_status_history (organization_id, client_id, old_status, new_status,
        changed_by, changed_by_user_id, changed_by_agent_type, reason, created_at)
    VALUES ((SELECT app.current_org()), $1, $2::client_status, $3::client_status, $4::status_changed_by, $5,
            $6::agent_type, $7, clock_timestamp())"""
_HISTORY = f"SELECT {HISTORY_COLUMNS} FROM client_status_history WHERE {IN_ORG} AND client_id = $1"
_HISTORY_FIRST = f"{_HISTORY} ORDER BY created_at DESC, id DESC LIMIT $2"
_HISTORY_AFTER = (f"{_HISTORY} AND {keyset_after(('created_at', 'id'), True, 2)} "
                  f"ORDER BY created_at DESC, id DESC LIMIT $4")


# --- records → entities ------------------------------------------------------------------------

def _json(text: str | None) -> dict | None:
    value = json.loads(text) if text is not None else None
    return value if isinstance(value, dict) else None


def _client(row: asyncpg.Record) -> Client:
    (id_, phone, email, first_name, last_name, status, language, context, metadata, partner, variant,
     created_at, updated_at) = row
    return Client(id_, phone, email, first_name, last_name, status, language, _json(context), _json(metadata),
                  partner, variant, created_at, updated_at, etag_of(updated_at))


def _client_or_none(row: asyncpg.Record | None) -> Client | None:
    return _client(row) if row is not None else None


def _change(row: asyncpg.Record) -> StatusChange:
    return StatusChange(*row)


@contextmanager
def _client_write() -> Iterator[None]:
    """A duplicate phone or a reference to nothing, as the domain's error."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == _PHONE_UNIQUE:
            raise domain.phone_taken() from None
        raise
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name in _REFERENCES:
            raise domain.unknown_reference(_REFERENCES[exc.constraint_name]) from None
        raise


# --- clients -----------------------------------------------------------------------------------

async def insert_client(conn: asyncpg.Connection, values: dict[str, object]) -> Client:
    """A new client in the transaction's organization. PHONE_TAKEN when the phone is taken."""
    sql, args = insert_sql("clients", values, WRITABLE, returning=CLIENT_COLUMNS)
    with _client_write():
        return _client(await conn.fetchrow(sql, *args))


async def insert_client_if_absent(conn: asyncpg.Connection, values: dict[str, object]) -> Client | None:
    """The new client, or None when the phone is taken (waits for a racing insert to finish)."""
    sql, args = insert_sql("clients", values, WRITABLE, returning=CLIENT_COLUMNS,
                           on_conflict="ON CONFLICT (organization_id, phone) DO NOTHING")
    with _client_write():
        return _client_or_none(await conn.fetchrow(sql, *args))


async def get_client(conn: ReadConnection, client_id: UUID, *, for_update: bool = False) -> Client | None:
    return _client_or_none(await conn.fetchrow(_GET_FOR_UPDATE if for_update else _GET, client_id))


async def get_client_by_phone(conn: ReadConnection, phone: str) -> Client | None:
    return _client_or_none(await conn.fetchrow(_GET_BY_PHONE, phone))


async def update_client(conn: asyncpg.Connection, client_id: UUID, changes: dict[str, object]) -> Client | None:
    """The masked fields set; None when there is no such client."""
    sql, args = update_sql("clients", changes, WRITABLE, returning=CLIENT_COLUMNS)
    with _client_write():
        return _client_or_none(await conn.fetchrow(sql, client_id, *args))


async def set_status(conn: asyncpg.Connection, client_id: UUID, status: str) -> Client | None:
    return _client_or_none(await conn.fetchrow(_SET_STATUS, client_id, status))


async def delete_client(conn: asyncpg.Connection, client_id: UUID) -> UUID | None:
    """The deleted client's id (its history goes with it), or None when there is none."""
    return await conn.fetchval(_DELETE, client_id)


@dataclass(frozen=True)
class ClientQuery:
    """A compiled ListClients filter and order (no I/O: compiled before the transaction)."""

    where: str  # "" or a condition with parameters from $1
    params: list
    order_column: str
    descending: bool


def compile_client_query(filter_text: str, order_field: str, descending: bool) -> ClientQuery:
    where, params = compile_filter(filter_text, FILTER_FIELDS, first_param=1)
    return ClientQuery(where, params, ORDER_COLUMNS[order_field], descending)


async def list_clients(conn: asyncpg.Connection, query: ClientQuery, page: PageRequest) -> list[Client]:
    """Up to `page.limit` clients after the previous page's last (order column, id)."""
    conditions = [IN_ORG, query.where] if query.where else [IN_ORG]
    args = list(query.params)
    keys = (query.order_column, "id")
    if page.after is not None:
        conditions.append(keyset_after(keys, query.descending, len(args) + 1))
        args += page.after
    args.append(page.limit)
    rows = await conn.fetch(
        f"SELECT {CLIENT_COLUMNS} FROM clients WHERE {' AND '.join(conditions)} "
        f"ORDER BY {order_by(keys, query.descending)} LIMIT ${len(args)}", *args)
    return [_client(row) for row in rows]


# --- status history ------------------------------------------------------------------------------

async def insert_history(conn: asyncpg.Connection, client_id: UUID, old_status: str | None, new_status: str,
                         changed_by: str, user_id: UUID | None, agent_type: str | None,
                         reason: str | None) -> None:
    await conn.execute(_INSERT_HISTORY, client_id, old_status, new_status, changed_by, user_id, agent_type, reason)


async def list_status_changes(conn: asyncpg.Connection, query: domain.StatusChangesQuery,
                              page: PageRequest) -> list[StatusChange]:
    """The changes of `query`'s clients, by (client_id, created_at, id), after the page's key.
    Served by ix_client_status_history_organization_id_client_id_created_at_id."""
    conditions = [IN_ORG, "client_id = ANY($1::uuid[])"]
    args: list = [list(query.client_ids)]
    if query.statuses:
        args.append(list(query.statuses))
        conditions.append(f"new_status = ANY(${len(args)}::client_status[])")
    if query.since is not None:
        args.append(query.since)
        conditions.append(f"created_at >= ${len(args)}")
    if page.after is not None:
        conditions.append(keyset_after(("client_id", "created_at", "id"), False, len(args) + 1))
        args += page.after
    args.append(page.limit)
    rows = await conn.fetch(
        f"SELECT {HISTORY_COLUMNS} FROM client_status_history WHERE {' AND '.join(conditions)} "
        f"ORDER BY client_id, created_at, id LIMIT ${len(args)}", *args)
    return [_change(row) for row in rows]


async def list_history(conn: asyncpg.Connection, client_id: UUID, page: PageRequest) -> list[StatusChange]:
    """Newest first, keyset on (created_at, id)."""
    if page.after is None:
        rows = await conn.fetch(_HISTORY_FIRST, client_id, page.limit)
    else:
        rows = await conn.fetch(_HISTORY_AFTER, client_id, *page.after, page.limit)
    return [_change(row) for row in rows]
