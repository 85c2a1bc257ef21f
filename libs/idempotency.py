"""AIP-155 request ids: a retried create returns the first result instead of a duplicate.

Inside the create's own transaction (services/crm/service.py's create is the model):

    CREATE_CLIENT = "soulkg.crm.v1.ClientService/CreateClient"  # the method's full name
    async with db.transaction() as conn:
        existing = await claim_request_id(conn, CREATE_CLIENT, request_id)
        if existing is not None:
            return found(await repo.get(conn, existing), "client")   # the first call's resource
        client = await repo.insert(conn, ...)
        await record_request_id(conn, CREATE_CLIENT, request_id, client.id)

`claim` inserts the (organization, method, request id) row first: a concurrent retry with
the same id waits on the unique key until the first transaction ends, then reads its
resource id; if the first failed and rolled back, the retry proceeds as the first. Rows live
in `request_ids` (shared infrastructure, under row-level security like every table).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar
from uuid import UUID

import asyncpg

from libs.errors import InvalidArgument
from libs.persistence import IN_ORG, found

T = TypeVar("T")

REQUEST_ID_RETENTION = timedelta(days=1)  # a retry after that creates anew (documented in the protos)


def parse_request_id(value: str, field: str = "request_id") -> UUID | None:
    """Empty: no idempotency. Otherwise a UUID (AIP-155 recommends UUID4)."""
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise InvalidArgument.field(field, "must be a UUID") from None


async def claim_request_id(conn: asyncpg.Connection, method: str, request_id: UUID | None) -> UUID | None:
    """None when this call is the first with `request_id` (go ahead and create), else the id
    of the resource the first call created."""
    if request_id is None:
        return None
    claimed = await conn.fetchval(
        """INSERT INTO request_ids (organization_id, method, request_id)
           VALUES ((SELECT app.current_org()), $1, $2)
           ON CONFLICT (organization_id, method, request_id) DO UPDATE
               SET resource_id = NULL, created_at = now()
               WHERE request_ids.created_at < now() - $3::interval
           RETURNING true""", method, request_id, REQUEST_ID_RETENTION)
    if claimed:
        return None
    return await conn.fetchval(
        f"SELECT resource_id FROM request_ids WHERE {IN_ORG} AND method = $1 AND request_id = $2",
        method, request_id)


async def record_request_id(conn: asyncpg.Connection, method: str, request_id: UUID | None,
                            resource_id: UUID) -> None:
    if request_id is None:
        return
    await conn.execute(
        f"UPDATE request_ids SET resource_id = $3 WHERE {IN_ORG} AND method = $1 AND request_id = $2",
        method, request_id, resource_id)


async def create_once(conn: asyncpg.Connection, method: str, request_id: UUID | None, *,
                      create: Callable[[], Awaitable[T]], existing: Callable[[UUID], Awaitable[T | None]],
                      resource: str) -> T:
    """The whole AIP-155 create in one call: the first call with `request_id` runs `create()`
    (which returns an entity with an `id`) and records it; a retry gets `existing(id)` of the
    first result (NOT_FOUND `<RESOURCE>_NOT_FOUND` if it has been deleted since)."""
    first = await claim_request_id(conn, method, request_id)
    if first is not None:
        return found(await existing(first), resource)
    created = await create()
    await record_request_id(conn, method, request_id, created.id)
    return created
