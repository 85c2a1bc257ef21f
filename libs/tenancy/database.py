"""The unit of work: every transaction runs as the caller's organization under RLS.

`async with db.transaction() as conn:` takes a pooled asyncpg connection, opens a
transaction and, in the same round trip, sets the transaction-local
`app.current_organization_id` (what every RLS policy reads) and a `statement_timeout`
derived from the caller's remaining deadline. Transaction-local (`set_config(..., true)`)
settings vanish at commit/rollback, so a pooled connection never carries one request's
organization into the next.

`async with db.single_read() as conn:` is the same for a read that is ONE statement, in one
round trip instead of three (BEGIN with the settings, the statement, COMMIT): the setting and
the caller check are made inside the statement itself, which PostgreSQL runs as an implicit
transaction of its own, so the transaction-local setting ends with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from uuid import UUID

import asyncpg

from libs.errors import DeadlineExceeded
from libs.tenancy.context import admitted_roles, current_principal, require_principal, time_remaining

DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
# Keep a little of the caller's deadline for the reply to travel back.
DEADLINE_MARGIN_MS = 20
ROLLBACK_TIMEOUT_S = 5.0  # waiting for a cancelled statement to stop included

# Pass as organization_id for a transaction that sees no tenant rows at all (the policies'
# app.current_org() is NULL): for the narrow SECURITY DEFINER lookups made before login.
NO_ORGANIZATION = ""


async def _rollback_if_open(conn: asyncpg.Connection) -> None:
    """The pool's reset hook. Our sessions carry no state (settings are transaction-local; no
    LISTEN, advisory locks or session cursors), so asyncpg's default reset query (RESET ALL,
    ...) would be a wasted round trip per request; only a transaction left open by an error
    needs ending."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _end_failed_transaction(conn: asyncpg.Connection, cancelled: bool) -> None:
    """Roll back here, so the pool never meets an open transaction (asyncpg would log that as
    an ERROR): after a failed statement or COMMIT, and after a call cancelled by its client.

    A cancelled call always rolls back: its statement was still running, so the connection's
    transaction state is the one from before it (a call cancelled in its first round trip
    looks idle, yet BEGIN has run). asyncpg's ROLLBACK first waits for the cancelled
    statement to stop; when there was no transaction after all, PostgreSQL only warns. gRPC
    may cancel a handler again while it cleans up: the rollback still runs to its end. A
    connection lost mid-call is already detached from the pool: nothing to end then."""
    try:
        if conn.is_closed() or not (cancelled or conn.is_in_transaction()):
            return
    except asyncpg.InterfaceError:  # lost: asyncpg has taken it back from this proxy
        return
    # Bounded: a rollback that cannot finish (the cancelled statement never acknowledged) must
    # not hold the handler, or a server's shutdown, for ever; the connection is dropped then.
    rollback = asyncio.ensure_future(conn.execute("ROLLBACK", timeout=ROLLBACK_TIMEOUT_S))
    while not rollback.done():
        try:
            await asyncio.shield(rollback)
        except asyncio.CancelledError:
            continue  # cancelled again: the caller re-raises its first cancellation anyway
        except Exception:
            with contextlib.suppress(Exception):
                conn.terminate()  # broken or stuck: the pool opens a new one when needed
            return


def _begin_sql(org: UUID | str, timeout_ms: int, readonly: bool, caller: UUID | None = None,
               roles: frozenset[str] = frozenset()) -> str:
    """BEGIN, both settings and (for a user's call) the check of the user's current state, in
    one simple-query round trip. Only UUIDs (or the empty NO_ORGANIZATION), an int and role
    labels from the code's own policy tables are interpolated: nothing a caller sends."""
    if isinstance(org, UUID):
        org_text = str(org)
    elif org == NO_ORGANIZATION:
        org_text = ""
    else:
        raise TypeError("organization_id must be a UUID or NO_ORGANIZATION")
    mode = " READ ONLY" if readonly else ""
    sql = (f"BEGIN{mode}; SELECT set_config('app.current_organization_id', '{org_text}', true), "
           f"set_config('statement_timeout', '{int(timeout_ms)}ms', true)")
    if caller is not None:
        if not all(role.isalpha() and role.isupper() for role in roles):
            raise ValueError("role labels are upper-case words")
        role_array = "{" + ",".join(sorted(roles)) + "}"
        sql += f"; SELECT auth.assert_caller('{UUID(str(caller))}', '{role_array}')"
    return sql


@lru_cache(maxsize=512)
def _single_statement_sql(sql: str, first_param: int, caller_check: bool) -> str:
    """`sql` (a SELECT whose parameters are $1 .. $first_param-1) behind the organization
    setting and, for a user's call, the caller check, as one statement.

    The order is forced by LATERAL references, not left to the planner: `s` sets the
    organization; `c` reads s.org and checks the caller; `q` reads c's columns, so it runs per
    row of c, after it, and only then does its scan evaluate the row-level security policy and
    IN_ORG, which read the organization just set. The OFFSET 0s keep each level from being
    pulled up into the one above. `q` reads the check's result on purpose: the planner drops an
    unread output of a subquery unless its function is volatile, and assert_caller is STABLE."""
    n = first_param
    check = f"auth.assert_caller(${n + 1}::uuid, ${n + 2}::text[])::text" if caller_check else "''"
    return (f"SELECT q.* FROM (SELECT pg_catalog.set_config('app.current_organization_id', ${n}::text, true) AS org "
            f"OFFSET 0) s CROSS JOIN LATERAL (SELECT s.org, {check} AS checked OFFSET 0) c "
            f"CROSS JOIN LATERAL (SELECT * FROM ({sql}) z WHERE c.org IS NOT NULL AND c.checked IS NOT NULL "
            f"OFFSET 0) q")


def single_statement(sql: str, args: Sequence, org_text: str, caller: UUID | None = None,
                     roles: Sequence[str] = ()) -> tuple[str, list]:
    """`sql` with `args` as single_read() runs it: the statement text and all its parameters
    (the organization, and for a user's call the caller and the roles the method admits)."""
    params = [*args, org_text]
    if caller is not None:
        params += [caller, list(roles)]
    return _single_statement_sql(sql, len(args) + 1, caller is not None), params


class SingleStatement:
    """What `TenantDatabase.single_read()` yields: room for one read statement (`fetch`,
    `fetchrow` or `fetchval`, as on an asyncpg connection, so repositories take it as `conn`),
    run as the caller's organization with the caller check, in one round trip."""

    def __init__(self, conn: asyncpg.Connection, org_text: str, caller: UUID | None, roles: Sequence[str],
                 timeout: float) -> None:
        self._conn, self._org, self._caller, self._roles, self._timeout = conn, org_text, caller, roles, timeout
        self._used = False

    async def fetch(self, sql: str, *args) -> list[asyncpg.Record]:
        return await self._run(self._conn.fetch, sql, args)

    async def fetchrow(self, sql: str, *args) -> asyncpg.Record | None:
        return await self._run(self._conn.fetchrow, sql, args)

    async def fetchval(self, sql: str, *args):
        return await self._run(self._conn.fetchval, sql, args)

    async def _run(self, method, sql: str, args: tuple):
        if self._used:  # a second statement would be a second transaction, with its own snapshot
            raise RuntimeError("single_read() runs one statement; use transaction() for more")
        self._used = True
        statement, params = single_statement(sql, args, self._org, self._caller, self._roles)
        try:
            # A transaction-local statement_timeout cannot bound the statement that sets it:
            # the caller's deadline bounds it from here (asyncpg cancels the query on timeout).
            return await method(statement, *params, timeout=self._timeout)
        except TimeoutError:
            raise DeadlineExceeded("the database query ran out of time", reason="DATABASE_TIMEOUT") from None


# What a repository's read function takes: a connection in a transaction, or the one
# statement of single_read().
ReadConnection = asyncpg.Connection | SingleStatement


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
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, reset=_rollback_if_open)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self, organization_id: UUID | str | None = None, *,
                          readonly: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A transaction as `organization_id`, by default the calling principal's organization."""
        principal = current_principal()
        if organization_id is None:
            organization_id = require_principal().organization_id
        # A user's call also checks the user's current row (active, and a role the method
        # admits): see auth.assert_caller in migrations/versions/0004.
        caller = principal.user_id if principal is not None and \
            principal.organization_id == organization_id else None
        timeout_ms = statement_timeout_ms()
        begin = _begin_sql(organization_id, timeout_ms, readonly, caller,
                           admitted_roles() if caller is not None else frozenset())
        async with self._connection(timeout_ms / 1000) as conn:
            try:
                await conn.execute(begin)
                yield conn
                await conn.execute("COMMIT")
            except BaseException as failure:
                await _end_failed_transaction(conn, cancelled=isinstance(failure, asyncio.CancelledError))
                raise

    @asynccontextmanager
    async def single_read(self, organization_id: UUID | str | None = None) -> AsyncIterator[SingleStatement]:
        """One read statement as `organization_id` (by default the calling principal's), with
        the caller check of a user's call, in one round trip: for a use case that reads with a
        single SELECT (a get by id, one page of a list). Anything more takes `transaction()`."""
        principal = current_principal()
        if organization_id is None:
            organization_id = require_principal().organization_id
        if isinstance(organization_id, UUID):
            org_text = str(organization_id)
        elif organization_id == NO_ORGANIZATION:
            org_text = ""
        else:
            raise TypeError("organization_id must be a UUID or NO_ORGANIZATION")
        caller = principal.user_id if principal is not None and \
            principal.organization_id == organization_id else None
        roles = sorted(admitted_roles()) if caller is not None else []
        timeout = statement_timeout_ms() / 1000
        async with self._connection(timeout) as conn:
            yield SingleStatement(conn, org_text, caller, roles, timeout)

    @asynccontextmanager
    async def _connection(self, timeout: float) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, waited for no longer than the call's time (at most the default
        statement timeout): a pool that stays busy is a DEADLINE_EXCEEDED, never a call that
        waits for ever."""
        try:
            conn = await self.pool.acquire(timeout=timeout)
        except TimeoutError:
            raise DeadlineExceeded("no database connection was free in time", reason="DATABASE_TIMEOUT") from None
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    async def ping(self) -> None:
        """Raises unless the database answers (used by health checks)."""
        async with self.pool.acquire() as conn:
            await conn.fetchval("select 1")
