"""Row-level security, table by table: organization A can neither see nor touch organization B.

Organizations are created as the server's superuser (the only role that bypasses RLS here);
every other row is written under `app.current_organization_id` as the role of the service that
owns the table (libs/registry.py; `request_ids`, shared, as any service's), exactly as the
services do. The owner role cannot help: FORCE ROW LEVEL SECURITY applies to it too.
"""

from __future__ import annotations

import graphlib
import os
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from libs import registry


def _unique() -> str:
    return uuid.uuid4().hex[:12]


def _in_days(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


@dataclass(frozen=True)
class TableSpec:
    """How to build a valid row: its references (column -> referenced table, always within the
    row's organization) and fresh values for the other required columns."""

    refs: dict[str, str] = field(default_factory=dict)
    values: Callable[[], dict[str, Any]] = dict


# One entry per table in `public` (test_specs_cover_the_schema keeps this list complete).
SPECS: dict[str, TableSpec] = {
    "organizations": TableSpec(values=lambda: {"name": "RLS test", "slug": f"rls-{_unique()}"}),
    "users": TableSpec(values=lambda: {"email": f"{_unique()}@example.com", "password_hash": "x"}),
    "refresh_tokens": TableSpec({"user_id": "users"}, lambda: {
        "family_id": uuid.uuid4(), "token_hash": os.urandom(32), "expires_at": _in_days(1)}),
    "partners": TableSpec(values=lambda: {"name": "Partner", "rating": Decimal("4.50")}),
    # Before the tables whose writes bump it (a trigger makes the organization's one row).
    "agent_revisions": TableSpec(values=lambda: {"revision": 1}),
    "prompt_variants": TableSpec(values=lambda: {
        "agent_type": "COMMUNICATION", "name": "Variant", "prompt": "Be kind."}),
    "clients": TableSpec({"assigned_partner_id": "partners", "prompt_variant_id": "prompt_variants"},
                         lambda: {"phone": f"+996{random.randrange(10**8, 10**9)}"}),
    # Archived: a client has one open conversation per channel, and these tests insert more.
    "conversations": TableSpec({"client_id": "clients", "assigned_user_id": "users"},
                               lambda: {"managed_by": "HUMAN", "status": "ARCHIVED"}),
    "conversation_handoffs": TableSpec({"conversation_id": "conversations", "assigned_user_id": "users",
                                        "handed_off_by_user_id": "users"}, lambda: {
        "from_manager": "AI", "to_manager": "HUMAN", "handed_off_by": "HUMAN"}),
    "messages": TableSpec({"conversation_id": "conversations", "sender_id": "users"}, lambda: {
        "direction": "OUTGOING", "sender": "HUMAN", "content": "Hello",
        "whatsapp_message_id": _unique()}),
    "client_status_history": TableSpec({"client_id": "clients", "changed_by_user_id": "users"},
                                       lambda: {"new_status": "QUALIFIED", "changed_by": "HUMAN"}),
    "products": TableSpec({"partner_id": "partners"}, lambda: {
        "name": "Weekend Getaway", "type": "TOUR", "base_price": Decimal("100.00")}),
    "client_products": TableSpec({"client_id": "clients", "product_id": "products"}),
    "tours": TableSpec({"product_id": "products"}, lambda: {
        "start_date": _in_days(10), "end_date": _in_days(13), "max_participants": 10,
        "price": Decimal("250.00")}),
    "client_tours": TableSpec({"client_id": "clients", "tour_id": "tours"},
                              lambda: {"participants": 2}),
    "agent_configurations": TableSpec(values=lambda: {
        "agent_type": "COMMUNICATION", "name": _unique(), "prompt": "Be kind."}),
    "experiments": TableSpec(values=lambda: {"agent_type": "COMMUNICATION", "name": "Experiment"}),
    "experiment_variants": TableSpec({"experiment_id": "experiments",
                                      "prompt_variant_id": "prompt_variants"},
                                     lambda: {"weight": 50}),
    # The experiment and the variant of the organization's experiment_variants row: its
    # (experiment_id, prompt_variant_id) is one foreign key to experiment_variants.
    "experiment_assignments": TableSpec({"experiment_id": "experiments", "prompt_variant_id": "prompt_variants",
                                         "client_id": "clients"}, lambda: {"weights_version": 1}),
    "dialogue_analysis": TableSpec({"prompt_variant_id": "prompt_variants"}, lambda: {
        "analysis_type": "SUCCESS_PATTERNS", "data": Jsonb({"score": 1})}),
    "whatsapp_sessions": TableSpec(),
    "request_ids": TableSpec(values=lambda: {"method": "/soulkg.test.v1.T/Create", "request_id": uuid.uuid4()}),
    "service_assertions": TableSpec(values=lambda: {"service_name": "webhook", "jti": _unique(),
                                                    "expires_at": _in_days(1)}),
    "audit_events": TableSpec(values=lambda: {"actor_kind": "ANONYMOUS", "action": "test.recorded"}),
    # Not a tenant table (tests/test_schema_catalog.py says why): tested on its own below.
    "auth_limits": TableSpec(values=lambda: {"key": os.urandom(32), "window_start": _in_days(0), "attempts": 1,
                                             "expires_at": _in_days(1)}),
}
NON_TENANT_TABLES = {"auth_limits"}

# Tables of records that are never edited by users, so they have no updated_at.
APPEND_ONLY = {"messages", "client_status_history", "dialogue_analysis", "refresh_tokens", "request_ids",
               "conversation_handoffs", "experiment_assignments", "agent_revisions",
               "service_assertions", "audit_events"}
# Tables with a unique key that a reference column is not part of (one assignment per
# experiment and client, whatever the variant).
UNIQUE_BEYOND_REFERENCES = {"experiment_assignments"}
# Columns of a foreign key to a wider key, as the SPECS name them: the table each column's
# value comes from rather than the table the key references.
WIDER_KEY_COLUMNS = {("experiment_assignments", "experiment_id", "experiment_variants"): "experiments",
                     ("experiment_assignments", "prompt_variant_id", "experiment_variants"): "prompt_variants"}
# Tables whose owner may read and append but neither update nor delete (the audit log).
INSERT_ONLY = set(registry.APPEND_ONLY_SHARED)

TENANT_TABLES = list(graphlib.TopologicalSorter(
    {table: set(spec.refs.values()) for table, spec in SPECS.items()
     if table != "organizations" and table not in NON_TENANT_TABLES}
).static_order())
ALL_TABLES = ["organizations", *TENANT_TABLES]
FOREIGN_KEYS = [(table, column, parent)
                for table, spec in SPECS.items() for column, parent in spec.refs.items()]
FK_IDS = [f"{table}.{column}->{parent}" for table, column, parent in FOREIGN_KEYS]


def owner(table: str) -> str:
    """The service whose role writes `table` (the shared request_ids: crm's, as any would)."""
    return "crm" if table == "request_ids" else registry.owner_of(table).name


def tenant_key(table: str) -> str:
    return "id" if table == "organizations" else "organization_id"


def denial(table: str) -> str:
    """Why an INSERT is refused: organizations are not insertable by identity's role at all;
    tenant rows fail the policy's WITH CHECK."""
    return "permission denied" if table == "organizations" else "row-level security"


def insert(conn: psycopg.Connection, table: str, org_id: uuid.UUID,
           refs: dict[str, uuid.UUID]) -> uuid.UUID:
    """Insert a fresh row of `table` for `org_id` (organizations: with that id)."""
    spec = SPECS[table]
    row = {tenant_key(table): org_id, **{column: refs[column] for column in spec.refs}, **spec.values()}
    query = sql.SQL("insert into {} ({}) values ({}) returning id").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)))
    return conn.execute(query, list(row.values())).fetchone()[0]


@dataclass
class Org:
    id: uuid.UUID
    rows: dict[str, uuid.UUID] = field(default_factory=dict)  # table -> id of its row

    def refs(self, table: str) -> dict[str, uuid.UUID]:
        """This organization's rows for every reference of `table`."""
        return {column: self.rows[parent] for column, parent in SPECS[table].refs.items()}


def set_org(conn: psycopg.Connection, value: str) -> None:
    conn.execute("select set_config('app.current_organization_id', %s, true)", [value])


@contextmanager
def acting_as(conn: psycopg.Connection, org: Org | str | None) -> Iterator[psycopg.Connection]:
    """A transaction (always rolled back) on a service role's connection for `org` (None: no
    setting at all; a string: that raw setting)."""
    with conn.transaction(force_rollback=True):
        if org is not None:
            set_org(conn, str(org.id) if isinstance(org, Org) else org)
        yield conn


def _connections(database) -> Iterator[dict[str, psycopg.Connection]]:
    """One autocommit connection per registered service, as its own role."""
    conns = {entry.name: psycopg.connect(database.service(entry.name), autocommit=True)
             for entry in registry.SERVICES}
    try:
        yield conns
    finally:
        for conn in conns.values():
            conn.close()


@pytest.fixture(scope="module")
def connections(database) -> Iterator[dict[str, psycopg.Connection]]:
    yield from _connections(database)


@pytest.fixture(scope="module")
def unset_connections(database) -> Iterator[dict[str, psycopg.Connection]]:
    """Connections on which app.current_organization_id is never set."""
    yield from _connections(database)


@pytest.fixture(scope="module")
def orgs(database, connections) -> Iterator[tuple[Org, Org]]:
    """Organizations A and B, each with one row in every table, each written by its owner."""
    with psycopg.connect(database.admin, autocommit=True) as admin:
        a, b = (Org(insert(admin, "organizations", uuid.uuid4(), {})) for _ in range(2))
    for org in (a, b):
        org.rows["organizations"] = org.id
        for table in TENANT_TABLES:
            conn = connections[owner(table)]
            with conn.transaction():
                set_org(conn, str(org.id))
                org.rows[table] = insert(conn, table, org.id, org.refs(table))
    yield a, b
    with psycopg.connect(database.admin, autocommit=True) as admin:
        admin.execute("delete from organizations where id = any(%s)", [[a.id, b.id]])


@pytest.fixture
def app(connections, table) -> psycopg.Connection:
    """The connection of the role of the service that owns the test's `table`."""
    return connections[owner(table)]


@pytest.fixture
def never_set(unset_connections, table) -> psycopg.Connection:
    """The owner's connection on which app.current_organization_id is never set."""
    return unset_connections[owner(table)]


def test_specs_cover_the_schema(database):
    """Every table and every foreign key between tenant tables is exercised below."""
    with psycopg.connect(database.admin) as conn:
        tables = {name for (name,) in conn.execute(
            "select relname from pg_class where relnamespace = 'public'::regnamespace"
            " and relkind in ('r', 'p') and relname <> 'alembic_version'")}
        fks = conn.execute("""
            select c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text
            from pg_constraint c
            join unnest(c.conkey) k(attnum) on true
            join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum
            where c.contype = 'f' and c.connamespace = 'public'::regnamespace
              and c.confrelid <> 'organizations'::regclass and a.attname <> 'organization_id'
        """).fetchall()
    fks = [(table, column, WIDER_KEY_COLUMNS.get((table, column, parent), parent)) for table, column, parent in fks]
    assert set(SPECS) == tables
    assert sorted(fks) == sorted(FOREIGN_KEYS)


@pytest.mark.parametrize("table", ALL_TABLES)
def test_select_sees_own_rows_only(app, orgs, table):
    a, b = orgs
    with acting_as(app, a):
        rows = app.execute(sql.SQL("select {}, id from {}").format(
            sql.Identifier(tenant_key(table)), sql.Identifier(table))).fetchall()
    assert {org for org, _ in rows} == {a.id}
    ids = {row_id for _, row_id in rows}
    assert a.rows[table] in ids
    assert b.rows[table] not in ids


@pytest.mark.parametrize("table", ALL_TABLES)
def test_insert_into_other_organization_is_rejected(app, orgs, table):
    a, b = orgs
    with acting_as(app, a), pytest.raises(errors.InsufficientPrivilege, match=denial(table)):
        insert(app, table, b.id, b.refs(table))


@pytest.mark.parametrize("table", ALL_TABLES)
def test_update_moving_row_to_other_organization_is_rejected(app, orgs, table):
    a, b = orgs
    key = sql.Identifier(tenant_key(table))
    denied = "permission denied" if table in INSERT_ONLY else "row-level security"
    with acting_as(app, a), pytest.raises(errors.InsufficientPrivilege, match=denied):
        app.execute(sql.SQL("update {} set {} = %s where id = %s").format(sql.Identifier(table), key),
                    [b.id, a.rows[table]])


@pytest.mark.parametrize("table", ALL_TABLES)
def test_update_and_delete_of_other_organizations_rows_touch_nothing(app, orgs, table):
    a, b = orgs
    ident = sql.Identifier(table)
    update = sql.SQL("update {} set id = id where id = %s").format(ident)
    delete = sql.SQL("delete from {} where id = %s").format(ident)
    if table in INSERT_ONLY:  # nobody rewrites the audit log, whatever the organization
        for statement in (update, delete):
            for row in (a.rows[table], b.rows[table]):
                with acting_as(app, a), pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                    app.execute(statement, [row])
        return
    with acting_as(app, a):
        assert app.execute(update, [b.rows[table]]).rowcount == 0
        assert app.execute(update, [a.rows[table]]).rowcount == 1  # the control
    if table == "organizations":
        with acting_as(app, a), pytest.raises(errors.InsufficientPrivilege):
            app.execute(delete, [b.rows[table]])  # organizations are never deleted by a service
        return
    with acting_as(app, a):
        assert app.execute(delete, [b.rows[table]]).rowcount == 0
        assert app.execute(delete, [a.rows[table]]).rowcount == 1  # the control


@pytest.mark.parametrize(("table", "column", "parent"), FOREIGN_KEYS, ids=FK_IDS)
def test_reference_to_other_organizations_row_is_rejected(app, orgs, table, column, parent):
    """FK checks bypass RLS: only the composite key stops A from pointing at B's row."""
    a, b = orgs
    refs = a.refs(table) | {column: b.rows[parent]}
    with acting_as(app, a), pytest.raises(errors.ForeignKeyViolation):
        if table in UNIQUE_BEYOND_REFERENCES:  # the row A has would be a duplicate before a dangling one
            app.execute(sql.SQL("delete from {} where id = %s").format(sql.Identifier(table)), [a.rows[table]])
        insert(app, table, a.id, refs)
    with acting_as(app, a), pytest.raises(errors.ForeignKeyViolation):
        app.execute(sql.SQL("update {} set {} = %s where id = %s").format(
            sql.Identifier(table), sql.Identifier(column)), [b.rows[parent], a.rows[table]])


@pytest.mark.parametrize("setting", [None, ""], ids=["unset", "empty"])
@pytest.mark.parametrize("table", ALL_TABLES)
def test_without_organization_nothing_is_visible_or_writable(app, never_set, orgs, table, setting):
    a, _ = orgs
    if setting is None:  # a connection that never defined the setting: current_setting is NULL
        app = never_set
        assert app.execute("select current_setting('app.current_organization_id', true)"
                           ).fetchone() == (None,)
    with acting_as(app, setting):
        count = app.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table))).fetchone()
        assert count == (0,)
    with acting_as(app, setting), pytest.raises(errors.InsufficientPrivilege, match=denial(table)):
        insert(app, table, a.id, a.refs(table))


@pytest.mark.parametrize("end", ["commit", "rollback"])
@pytest.mark.parametrize("service", [entry.name for entry in registry.SERVICES])
def test_setting_does_not_outlive_its_transaction(connections, orgs, service, end):
    """A pooled connection: the next transaction, with no set_config, sees nothing."""
    a, _ = orgs
    app = connections[service]
    tables = [table for table in ALL_TABLES if owner(table) == service]
    with app.transaction(force_rollback=end == "rollback"):
        set_org(app, str(a.id))
        for table in tables:
            assert app.execute(sql.SQL("select count(*) from {}").format(
                sql.Identifier(table))).fetchone()[0] >= 1, table
    with app.transaction():
        for table in tables:
            assert app.execute(sql.SQL("select count(*) from {}").format(
                sql.Identifier(table))).fetchone() == (0,), table


async def test_asyncpg_pool_connection_does_not_leak_organization(database, orgs):
    a, _ = orgs
    pool = await asyncpg.create_pool(database.service("crm"), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("select set_config('app.current_organization_id', $1, true)", str(a.id))
            assert await conn.fetchval("select count(*) from clients") >= 1
        async with pool.acquire() as conn:
            assert await conn.fetchval("select count(*) from clients") == 0
            async with conn.transaction():
                assert await conn.fetchval("select count(*) from clients") == 0
    finally:
        await pool.close()


@pytest.mark.parametrize("table", [t for t in ALL_TABLES if t not in APPEND_ONLY])
def test_updated_at_is_touched_for_the_service_roles(app, orgs, table):
    """The trigger function has no EXECUTE grant; triggers fire regardless."""
    a, _ = orgs
    with acting_as(app, a):
        ident = sql.Identifier(table)
        (before,) = app.execute(sql.SQL("select updated_at from {} where id = %s").format(ident),
                                [a.rows[table]]).fetchone()
        (after,) = app.execute(
            sql.SQL("update {} set updated_at = %s where id = %s returning updated_at").format(ident),
            [before - timedelta(days=1), a.rows[table]]).fetchone()
        assert after > before


def test_the_limiter_table_is_out_of_every_service_roles_reach(connections, database):
    """auth_limits (no tenant data) is forced under RLS with no policy for the services: no
    role reads or writes it; identity's role counts attempts through auth.limit_attempt."""
    key = os.urandom(32)
    for service, conn in connections.items():
        for statement in ("select count(*) from auth_limits", "delete from auth_limits",
                          "update auth_limits set attempts = 0"):
            with acting_as(conn, None), pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement)
        with acting_as(conn, None), pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            insert_limit = sql.SQL("insert into auth_limits ({}) values ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, SPECS["auth_limits"].values())),
                sql.SQL(", ").join(sql.Placeholder() * len(SPECS["auth_limits"].values())))
            conn.execute(insert_limit, list(SPECS["auth_limits"].values().values()))
        limit_call = ("select retry_after from auth.limit_attempt(array[%s]::bytea[], array[1], "
                      "array[interval '1 hour'], array[interval '1 minute'], array[interval '1 hour'])")
        if service == registry.owner_of("auth_limits").name:
            with conn.transaction():  # committed
                assert conn.execute(limit_call, [key]).fetchone() == (timedelta(0),)
        else:
            with acting_as(conn, None), pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(limit_call, [key])
    with psycopg.connect(database.admin) as admin:
        assert admin.execute("select attempts from auth_limits where key = %s", [key]).fetchone() == (1,)
        columns = {name for (name,) in admin.execute(
            "select attname from pg_attribute where attrelid = 'auth_limits'::regclass and attnum > 0"
            " and not attisdropped")}
    assert "organization_id" not in columns and not {c for c in columns if "email" in c or "address" in c}
