"""Each service's role may touch only the tables its service owns (DESIGN.md section 1):
crm's role can neither read nor write identity's tables, and so on for every pair. Foreign
keys between services' tables still hold and still work: their checks and referential actions
need no privilege on the other service's table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors, sql

from libs import registry

SHARED_TABLES = {"request_ids"}
# Owned by one service, appended to by all (the audit log): see the tests at the end.
APPEND_ONLY_SHARED = set(registry.APPEND_ONLY_SHARED)
ALL_OWNED = [table for entry in registry.SERVICES for table in entry.tables]
FOREIGN = [(entry.name, table) for entry in registry.SERVICES for table in ALL_OWNED
           if table not in entry.tables]

STATEMENTS = {
    "SELECT": "select count(*) from {}",
    "INSERT": "insert into {} default values",
    "UPDATE": "update {} set {} = {}",  # the table's first column (every table has its own)
    "DELETE": "delete from {}",
}


def _first_column(conn: psycopg.Connection, table: str) -> str:
    return conn.execute("select attname from pg_attribute where attrelid = %s::regclass and attnum = 1",
                        [table]).fetchone()[0]


@pytest.fixture(scope="module")
def connections(database) -> Iterator[dict[str, psycopg.Connection]]:
    conns = {entry.name: psycopg.connect(database.service(entry.name), autocommit=True)
             for entry in registry.SERVICES}
    yield conns
    for conn in conns.values():
        conn.close()


@pytest.fixture(scope="module")
def org(database) -> Iterator[uuid.UUID]:
    org = uuid.uuid4()
    with psycopg.connect(database.admin, autocommit=True) as admin:
        admin.execute("insert into organizations (id, name, slug) values (%s, 'Roles', %s)",
                      [org, f"roles-{org.hex[:12]}"])
    yield org
    with psycopg.connect(database.admin, autocommit=True) as admin:
        admin.execute("delete from organizations where id = %s", [org])


def run_as(conn: psycopg.Connection, org: uuid.UUID, query: str, *params) -> list[tuple]:
    """One committed transaction for `org` on a service role's connection."""
    with conn.transaction():
        conn.execute("select set_config('app.current_organization_id', %s, true)", [str(org)])
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def test_every_service_is_denied_every_other_services_tables():
    assert len(FOREIGN) == len(registry.SERVICES) * len(ALL_OWNED) - len(ALL_OWNED)


@pytest.mark.parametrize(("service", "table"), FOREIGN, ids=[f"{s}-{t}" for s, t in FOREIGN])
def test_a_service_role_cannot_touch_another_services_table(connections, org, service, table):
    conn = connections[service]
    for privilege, statement in STATEMENTS.items():
        if privilege == "INSERT" and table in APPEND_ONLY_SHARED:
            continue  # every service appends to it (below)
        with conn.transaction(force_rollback=True):
            conn.execute("select set_config('app.current_organization_id', %s, true)", [str(org)])
            column = sql.Identifier(_first_column(conn, table))
            with pytest.raises(errors.InsufficientPrivilege, match=f"permission denied for table {table}"):
                conn.execute(sql.SQL(statement).format(sql.Identifier(table), column, column))
        assert not conn.info.transaction_status, privilege  # idle: the denial was rolled back


@pytest.mark.parametrize("service", [entry.name for entry in registry.SERVICES])
def test_every_service_role_writes_the_shared_request_ids(connections, org, service):
    conn = connections[service]
    [(row,)] = run_as(conn, org, "insert into request_ids (organization_id, method, request_id)"
                                 " values (%s, %s, %s) returning id", org, f"/{service}.T/Create", uuid.uuid4())
    assert run_as(conn, org, "delete from request_ids where id = %s returning id", row) == [(row,)]


def test_foreign_keys_across_services_work(connections, org):
    """catalog's partner <- crm's client <- messaging's conversation, each written by its own
    service's role; crm's delete of the client cascades into messaging's table, catalog's
    delete of the partner empties crm's reference."""
    catalog, crm, messaging, agents = (connections[name] for name in ("catalog", "crm", "messaging", "agents"))
    [(partner,)] = run_as(catalog, org, "insert into partners (organization_id, name) values (%s, 'P')"
                                        " returning id", org)
    [(variant,)] = run_as(agents, org, "insert into prompt_variants (organization_id, agent_type, name, prompt)"
                                       " values (%s, 'COMMUNICATION', 'V', 'Be kind.') returning id", org)
    [(client,)] = run_as(crm, org, "insert into clients (organization_id, phone, assigned_partner_id,"
                                   " prompt_variant_id) values (%s, '+996555000111', %s, %s) returning id",
                         org, partner, variant)
    [(conversation,)] = run_as(messaging, org, "insert into conversations (organization_id, client_id)"
                                               " values (%s, %s) returning id", org, client)
    # A reference to a row that does not exist is still refused.
    with pytest.raises(errors.ForeignKeyViolation):
        run_as(messaging, org, "insert into conversations (organization_id, client_id) values (%s, %s)",
               org, uuid.uuid4())

    assert run_as(catalog, org, "delete from partners where id = %s returning id", partner) == [(partner,)]
    assert run_as(crm, org, "select assigned_partner_id, prompt_variant_id from clients where id = %s",
                  client) == [(None, variant)]
    assert run_as(crm, org, "delete from clients where id = %s returning id", client) == [(client,)]
    assert run_as(messaging, org, "select id from conversations where id = %s", conversation) == []


# No RETURNING: that would need SELECT, which only the owner has.
AUDIT_INSERT = ("insert into audit_events (organization_id, id, actor_kind, actor_id, action, target_type)"
                " values (%s, %s, 'SERVICE', %s, 'test.recorded', 'thing')")


@pytest.mark.parametrize("service", [entry.name for entry in registry.SERVICES])
def test_every_service_role_appends_to_the_audit_log_and_none_rewrites_it(connections, org, service):
    """INSERT for every service's role; SELECT for identity's alone; UPDATE and DELETE for
    none: an event, once written, stays as written."""
    conn = connections[service]
    event = uuid.uuid4()
    run_as(conn, org, AUDIT_INSERT, org, event, service)
    for statement in ("update audit_events set action = 'test.rewritten' where id = %s",
                      "delete from audit_events where id = %s", "truncate audit_events"):
        with conn.transaction(force_rollback=True):
            conn.execute("select set_config('app.current_organization_id', %s, true)", [str(org)])
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table audit_events"):
                conn.execute(statement, [event] if "%s" in statement else None)
    if service == registry.owner_of("audit_events").name:
        assert run_as(conn, org, "select action from audit_events where id = %s", event) == [("test.recorded",)]
    else:
        with conn.transaction(force_rollback=True):
            conn.execute("select set_config('app.current_organization_id', %s, true)", [str(org)])
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table audit_events"):
                conn.execute("select count(*) from audit_events")
    # ... and only for the transaction's own organization.
    with conn.transaction(force_rollback=True):
        conn.execute("select set_config('app.current_organization_id', %s, true)", [str(org)])
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(AUDIT_INSERT, [uuid.uuid4(), uuid.uuid4(), service])
