"""The unit of work (libs/tenancy/database.py) against real PostgreSQL: commit, rollback on
error, and nothing of one transaction's organization left on the pooled connection."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from libs.tenancy import database as database_module
from libs.tenancy.database import NO_ORGANIZATION, TenantDatabase


@pytest.fixture
async def one_connection_db(database):
    """catalog's pool (the tests write partners, a catalog table), one connection."""
    db = await TenantDatabase.connect(database.service("catalog"), min_size=1, max_size=1)
    yield db
    await db.close()


@pytest.fixture
def organization(database) -> uuid.UUID:
    org = uuid.uuid4()
    with psycopg.connect(database.admin) as conn:
        conn.execute("insert into organizations (id, name, slug) values (%s, 'UoW', %s)", (org, f"uow-{org.hex[:12]}"))
    return org


async def _partner_names(db: TenantDatabase, org: uuid.UUID) -> list[str]:
    async with db.transaction(org, readonly=True) as conn:
        return [r["name"] for r in await conn.fetch("select name from partners order by name")]


async def test_commit_and_rollback(one_connection_db, organization):
    db = one_connection_db
    async with db.transaction(organization) as conn:
        await conn.execute("insert into partners (organization_id, name) values ($1, 'kept')", organization)
    with pytest.raises(RuntimeError):
        async with db.transaction(organization) as conn:
            await conn.execute("insert into partners (organization_id, name) values ($1, 'lost')", organization)
            raise RuntimeError("boom")
    assert await _partner_names(db, organization) == ["kept"]


async def test_next_transaction_on_the_same_connection_sees_nothing_of_the_last(one_connection_db, organization):
    db = one_connection_db
    async with db.transaction(organization) as conn:
        await conn.execute("insert into partners (organization_id, name) values ($1, 'mine')", organization)
    with pytest.raises(RuntimeError):
        async with db.transaction(organization) as conn:
            raise RuntimeError("left mid-transaction")
    async with db.pool.acquire() as raw:  # the one pooled connection, no unit of work
        assert not raw.is_in_transaction()
        assert await raw.fetchval("select count(*) from partners") == 0
        assert await raw.fetchval("select current_setting('app.current_organization_id', true)") in (None, "")
    async with db.transaction(NO_ORGANIZATION, readonly=True) as conn:
        assert await conn.fetchval("select count(*) from partners") == 0


async def test_read_only_transactions_cannot_write(one_connection_db, organization):
    import asyncpg

    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        async with one_connection_db.transaction(organization, readonly=True) as conn:
            await conn.execute("insert into partners (organization_id, name) values ($1, 'x')", organization)


async def test_only_uuids_reach_the_sql(one_connection_db):
    with pytest.raises(TypeError):
        async with one_connection_db.transaction("x'); drop table clients; --"):
            pass


async def test_a_failed_transaction_is_ended_here_not_by_the_pool(one_connection_db, organization, caplog):
    """An ordinary NOT_FOUND or precondition failure inside a transaction rolls back at once: the
    pool never meets an open transaction, so asyncpg logs no 'Resetting connection' ERROR (which
    must keep meaning an error)."""
    import logging

    from libs.errors import NotFound

    db = one_connection_db
    with caplog.at_level(logging.WARNING, logger="asyncpg"):
        for _ in range(3):
            with pytest.raises(NotFound):
                async with db.transaction(organization) as conn:
                    await conn.execute("insert into partners (organization_id, name) values ($1, 'gone')",
                                       organization)
                    raise NotFound("no such thing")
    assert not [r for r in caplog.records if "active transaction" in r.getMessage()]
    assert "gone" not in await _partner_names(db, organization)
    async with db.pool.acquire() as conn:
        assert not conn.is_in_transaction()


@pytest.mark.parametrize("unit, cancels", [("transaction", 1), ("transaction", 2), ("first round trip", 1),
                                           ("first round trip", 2), ("single_read", 1), ("single_read", 2)])
async def test_a_call_cancelled_mid_statement_leaves_nothing_behind(one_connection_db, organization, database,
                                                                   caplog, monkeypatch, unit, cancels):
    """A client that hangs up cancels its handler in the middle of a statement (h2load does it
    at the end of every run), and gRPC may cancel it again while it cleans up. The transaction
    is rolled back, the statement stops on the server, the pool's connection is usable at
    once, and nothing is logged as an ERROR."""
    import asyncio
    import logging

    db = one_connection_db

    async def hung_up() -> None:
        if unit == "first round trip":  # cancelled while BEGIN and the settings run
            with monkeypatch.context() as patch:
                patch.setattr(database_module, "_begin_sql", lambda *args, **kwargs: "BEGIN; SELECT pg_sleep(30)")
                async with db.transaction(organization):
                    pass
        elif unit == "transaction":
            async with db.transaction(organization) as conn:
                await conn.execute("insert into partners (organization_id, name) values ($1, 'hung up')",
                                   organization)
                await conn.execute("select pg_sleep(30)")
        else:
            async with db.single_read(organization) as conn:
                await conn.fetchval("select pg_sleep(30)")

    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            call = asyncio.create_task(hung_up())
            while not await _sleeping(database):  # noqa: ASYNC110 - polls another server: in the statement
                await asyncio.sleep(0.02)
            call.cancel()
            for _ in range(cancels - 1):
                await asyncio.sleep(0)  # the handler is ending its transaction now
                call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert "hung up" not in await _partner_names(db, organization)
            assert not await _sleeping(database)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    async with db.pool.acquire() as conn:
        assert not conn.is_in_transaction()


async def _sleeping(database) -> bool:
    async with await psycopg.AsyncConnection.connect(database.admin, autocommit=True) as conn:
        cursor = await conn.execute("select count(*) from pg_stat_activity where query like '%pg_sleep(30)%' "
                                    "and state = 'active' and pid <> pg_backend_pid()")
        return (await cursor.fetchone())[0] > 0


async def test_a_busy_pool_is_a_deadline_exceeded_not_a_wait_for_ever(one_connection_db, organization):
    """The pool's one connection is held by another call: a call with 0.3 s left gets
    DEADLINE_EXCEEDED (DATABASE_TIMEOUT) once its time is up, and the pool serves again after."""
    import asyncio

    from libs.errors import DeadlineExceeded
    from libs.tenancy import context as tenancy_context

    db = one_connection_db
    held, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with db.transaction(organization, readonly=True):
            held.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    try:
        for unit in (lambda: db.transaction(organization, readonly=True), lambda: db.single_read(organization)):
            tenancy_context.set_deadline(0.3)
            with pytest.raises(DeadlineExceeded) as raised:
                async with asyncio.timeout(10):  # a wait for ever fails here instead
                    async with unit():
                        pass
            assert raised.value.reason == "DATABASE_TIMEOUT"
    finally:
        tenancy_context.set_deadline(None)
        release.set()
        await task
    assert await _partner_names(db, organization) == []
