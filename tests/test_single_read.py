"""TenantDatabase.single_read() against real PostgreSQL: one statement that sets the organization
and checks the caller itself. It sees its organization's rows only, runs the caller check
(also under generic plans, where the planner could otherwise drop it), and leaves nothing on
the pooled connection for the next statement."""

from __future__ import annotations

import uuid

import asyncpg
import psycopg
import pytest

from libs.errors import DeadlineExceeded
from libs.tenancy import context as tenancy_context
from libs.tenancy.context import PRINCIPAL_SERVICE, PRINCIPAL_USER, Principal
from libs.tenancy.database import NO_ORGANIZATION, TenantDatabase

GET = "SELECT id, name FROM partners WHERE organization_id = (SELECT app.current_org()) AND id = $1"
ALL = "SELECT name FROM partners WHERE organization_id = (SELECT app.current_org()) ORDER BY name"


@pytest.fixture
async def db(database):
    """catalog's pool (partners is a catalog table), one connection: every statement of a
    test meets what the one before it left."""
    db = await TenantDatabase.connect(database.service("catalog"), min_size=1, max_size=1)
    yield db
    await db.close()


@pytest.fixture
def orgs(database):
    """Two organizations with a partner each, and an active MANAGER of the first."""
    a, b, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    partners = {}
    with psycopg.connect(database.admin) as conn:
        for org in (a, b):
            conn.execute("insert into organizations (id, name, slug) values (%s, 'SR', %s)", (org, f"sr-{org.hex[:12]}"))
            partners[org] = conn.execute("insert into partners (organization_id, name) values (%s, %s) returning id",
                                         (org, f"partner of {org.hex[:6]}")).fetchone()[0]
        conn.execute("insert into users (id, organization_id, email, password_hash, role) "
                     "values (%s, %s, %s, 'x', 'MANAGER')", (user, a, f"m-{user.hex[:8]}@example.com"))
    return a, b, user, partners


def _as(org: uuid.UUID, user: uuid.UUID | None, roles: frozenset[str] = frozenset({"ADMIN", "MANAGER"})):
    """Run the rest of the test as this caller, as the interceptor does per call (each async
    test runs in its own task, with its own copy of the context)."""
    if user is None:
        principal = Principal(org, "service:agents", PRINCIPAL_SERVICE, None, "t", 0)
    else:
        principal = Principal(org, str(user), PRINCIPAL_USER, "MANAGER", "t", 0)
    tenancy_context.set_principal(principal)
    tenancy_context.set_admitted_roles(roles if user is not None else frozenset())


async def _setting(db: TenantDatabase):
    async with db.pool.acquire() as raw:
        assert not raw.is_in_transaction()
        return await raw.fetchval("select current_setting('app.current_organization_id', true)")


async def test_reads_its_organization_only_and_leaves_no_setting(db, orgs):
    a, b, user, partners = orgs
    _as(a, user)
    async with db.single_read() as conn:
        row = await conn.fetchrow(GET, partners[a])
    assert row["id"] == partners[a]
    assert await _setting(db) in (None, "")  # the implicit transaction took its setting with it
    async with db.single_read() as conn:
        assert await conn.fetchrow(GET, partners[b]) is None  # another organization's row: invisible
    async with db.single_read() as conn:
        assert [r["name"] for r in await conn.fetch(ALL)] == [f"partner of {a.hex[:6]}"]
    async with db.pool.acquire() as raw:  # the same connection, no unit of work: no tenant rows
        assert await raw.fetchval("select count(*) from partners") == 0
    async with db.single_read(NO_ORGANIZATION) as conn:
        assert await conn.fetchval("select count(*) from partners") == 0


async def test_a_service_token_reads_without_a_caller_check(db, orgs):
    a, _, _, partners = orgs
    _as(a, None)
    async with db.single_read() as conn:
        assert await conn.fetchval("SELECT name FROM partners WHERE id = $1", partners[a]) == f"partner of {a.hex[:6]}"


@pytest.mark.parametrize("plan", ["force_custom_plan", "force_generic_plan"])
async def test_the_caller_check_runs_in_the_statement(db, orgs, database, plan):
    """A deactivated user and a role the method does not admit fail exactly as in a
    transaction(): SK401 and SK403 from auth.assert_caller, under either kind of plan."""
    a, _, user, partners = orgs
    async with db.pool.acquire() as raw:
        await raw.execute(f"set plan_cache_mode = {plan}")  # session-level, on the one pooled connection
    try:
        _as(a, user, frozenset({"ADMIN"}))
        for _ in range(6):  # past the plan cache's five custom plans
            with pytest.raises(asyncpg.PostgresError) as denied:
                async with db.single_read() as conn:
                    await conn.fetchrow(GET, partners[a])
            assert denied.value.sqlstate == "SK403"
        with psycopg.connect(database.admin) as admin:
            admin.execute("update users set is_active = false where id = %s", (user,))
        _as(a, user)
        for _ in range(6):
            with pytest.raises(asyncpg.PostgresError) as gone:
                async with db.single_read() as conn:
                    await conn.fetchrow(GET, partners[a])
            assert gone.value.sqlstate == "SK401"
        assert await _setting(db) in (None, "")
    finally:
        async with db.pool.acquire() as raw:
            await raw.execute("reset plan_cache_mode")


async def test_one_statement_only(db, orgs):
    a, _, user, partners = orgs
    _as(a, user)
    with pytest.raises(RuntimeError):
        async with db.single_read() as conn:
            await conn.fetchrow(GET, partners[a])
            await conn.fetchrow(GET, partners[a])


async def test_the_callers_deadline_bounds_the_statement(db, orgs):
    a, _, user, _ = orgs
    _as(a, user)
    tenancy_context.set_deadline(0.3)
    with pytest.raises(DeadlineExceeded):
        async with db.single_read() as conn:
            await conn.fetchval("SELECT pg_sleep(5)")
    tenancy_context.set_deadline(None)
    assert await _setting(db) in (None, "")
