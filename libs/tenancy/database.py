"""The unit of work: every transaction runs as the caller's organization under RLS.

`async with db.transaction() as conn:` takes a pooled asyncpg connection, opens a
transaction and, in the same round trip, sets the transaction-local
`app.current_organization_id` (what every RLS policy reads) and a `statement_timeout`
derived from the caller's remaining deadline. Transaction-local (`set_config(..., true)`)
settings vanish at commit/rollback, so a pooled connection never carries one request's
organization into the next.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg

from libs.errors import DeadlineExceeded
from libs.tenancy.context import require_principal, time_remaining

DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
# Keep a little of the caller's deadline for the reply to travel back.
DEADLINE_MARGIN_MS = 20

# Pass as organization_id for a transaction that sees no tenant rows at all (the policies'
# app.current_org() is NULL): for the narrow SECURITY DEFINER lookups made before login.
NO_ORGANIZATION = ""

_BEGIN_SQL = ("select set_config('app.current_organization_id', $1, true), "
              "set_config('statement_timeout', $2, true)")


def statement_timeout_ms() -> int:
    remaining = time_remaining()
    if remaining is None:
        return DEFAULT_STATEMENT_TIMEOUT_MS
    ms = int(remaining * 1000) - DEADLINE_MARGIN_MS
    if ms <= 0:
        raise DeadlineExceeded("the request's deadline has passed", reason="DEADLINE_PASSED")
    return min(ms, DEFAULT_STATEMENT_TIMEOUT_MS)


class TenantDatabase:
    """An asyncpg pool whose transactions are bound to one organization."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 2, max_size: int = 10) -> TenantDatabase:
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self, organization_id: UUID | str | None = None, *,
                          readonly: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A transaction as `organization_id`, by default the calling principal's organization."""
        org = organization_id if organization_id is not None else require_principal().organization_id
        timeout = statement_timeout_ms()
        async with self.pool.acquire() as conn, conn.transaction(readonly=readonly):
            await conn.execute(_BEGIN_SQL, str(org), f"{timeout}ms")
            yield conn

    async def ping(self) -> None:
        """Raises unless the database answers (used by health checks)."""
        async with self.pool.acquire() as conn:
            await conn.fetchval("select 1")
