"""Tenancy and schema invariants, read from pg_catalog of the migrated database."""

from __future__ import annotations

import psycopg
import pytest

from libs import registry
from libs.db.provision import APP_ROLE, OWNER_ROLE

ORGANIZATIONS = "organizations"
# Alembic's bookkeeping table lives in public but holds no product data; no service role has a
# privilege on it (checked below).
NOT_PRODUCT_TABLES = {"alembic_version"}
# The one index on a tenant table not led by organization_id: identity looks a presented
# refresh token up by its hash before it knows the organization.
GLOBAL_INDEXES = {"uq_refresh_tokens_token_hash"}
# Product tables that are not tenant tables, and why. auth_limits: identity's limiter counts
# login attempts before the organization is known (the slug may name none) and per client
# address across organizations; it holds no tenant data (keys are SHA-256 digests, values
# counters and times). RLS is forced with an owner-only policy; the services' roles hold no
# privilege on it and reach it through SECURITY DEFINER functions (migrations/versions/0006).
NON_TENANT_TABLES = {"auth_limits"}
# Reached only through these functions (EXECUTE for the owning service's role alone).
LIMIT_FUNCTIONS = ["auth.limit_attempt(bytea[], integer[], interval[], interval[], interval[])",
                   "auth.limit_settle(bytea[], bytea[])"]

# Every index and unique constraint of the seed -> the key columns of the index that serves it
# here (an index whose leading columns are these; for unique ones, exactly these and unique).
SEED_INDEXES: list[tuple[str, str, tuple[str, ...], bool]] = [
    ("organizations", "slug @unique", ("slug",), True),
    ("users", "@@unique([organizationId, email])", ("organization_id", "email"), True),
    ("users", "@@index([organizationId])", ("organization_id",), False),
    ("users", "@@index([email])", ("organization_id", "email"), False),
    ("clients", "@@unique([organizationId, phone])", ("organization_id", "phone"), True),
    ("clients", "@@index([organizationId])", ("organization_id",), False),
    ("clients", "@@index([organizationId, status])", ("organization_id", "status"), False),
    ("clients", "@@index([organizationId, phone])", ("organization_id", "phone"), False),
    ("clients", "@@index([organizationId, createdAt])", ("organization_id", "created_at"), False),
    ("conversations", "@@index([organizationId, clientId])", ("organization_id", "client_id"), False),
    ("conversations", "@@index([organizationId, status])", ("organization_id", "status"), False),
    ("conversations", "@@index([organizationId, lastMessageAt])",
     ("organization_id", "last_message_at"), False),
    ("messages", "@@index([organizationId, conversationId])",
     ("organization_id", "conversation_id"), False),
    ("messages", "@@index([organizationId, createdAt])", ("organization_id", "created_at"), False),
    ("messages", "@@index([conversationId, createdAt])",
     ("organization_id", "conversation_id", "created_at"), False),
    ("messages", "@@index([whatsappMessageId])", ("organization_id", "whatsapp_message_id"), True),
    ("client_status_history", "@@index([organizationId, clientId])",
     ("organization_id", "client_id"), False),
    ("client_status_history", "@@index([organizationId, createdAt])",
     ("organization_id", "created_at"), False),
    ("products", "@@index([organizationId])", ("organization_id",), False),
    ("products", "@@index([organizationId, isActive])", ("organization_id", "is_active"), False),
    ("partners", "@@index([organizationId])", ("organization_id",), False),
    ("partners", "@@index([organizationId, isAvailable])", ("organization_id", "is_available"), False),
    ("client_products", "@@unique([clientId, productId])",
     ("organization_id", "client_id", "product_id"), True),
    ("client_products", "@@index([clientId])", ("organization_id", "client_id"), False),
    ("client_products", "@@index([productId])", ("organization_id", "product_id"), False),
    ("tours", "@@index([organizationId, productId])", ("organization_id", "product_id"), False),
    ("tours", "@@index([organizationId, startDate])", ("organization_id", "start_date"), False),
    ("tours", "@@index([organizationId, status])", ("organization_id", "status"), False),
    ("tours", "@@index([startDate, endDate])", ("organization_id", "start_date", "end_date"), False),
    ("client_tours", "@@unique([clientId, tourId])", ("organization_id", "client_id", "tour_id"), True),
    ("client_tours", "@@index([clientId])", ("organization_id", "client_id"), False),
    ("client_tours", "@@index([tourId])", ("organization_id", "tour_id"), False),
    ("agent_configurations", "@@unique([organizationId, agentType, name])",
     ("organization_id", "agent_type", "name"), True),
    ("agent_configurations", "@@index([organizationId, agentType])",
     ("organization_id", "agent_type"), False),
    ("agent_configurations", "@@index([organizationId, isActive])",
     ("organization_id", "is_active"), False),
    ("prompt_variants", "@@index([organizationId, agentType])", ("organization_id", "agent_type"), False),
    ("prompt_variants", "@@index([organizationId, isActive])", ("organization_id", "is_active"), False),
    ("experiments", "@@index([organizationId, status])", ("organization_id", "status"), False),
    ("experiments", "@@index([organizationId, agentType])", ("organization_id", "agent_type"), False),
    ("dialogue_analysis", "@@index([organizationId, createdAt])", ("organization_id", "created_at"), False),
    ("dialogue_analysis", "@@index([organizationId, analysisType])",
     ("organization_id", "analysis_type"), False),
    ("whatsapp_sessions", "organizationId @unique", ("organization_id",), True),
    # Not in the seed (DESIGN.md section 4 and identity's refresh tokens), required all the same.
    ("experiment_variants", "experiment <-> prompt variant, once",
     ("organization_id", "experiment_id", "prompt_variant_id"), True),
    ("experiment_assignments", "one assignment per client and experiment",
     ("organization_id", "experiment_id", "client_id"), True),
    ("experiment_assignments", "an experiment's assignments by variant (results)",
     ("organization_id", "experiment_id", "prompt_variant_id"), False),
    ("experiment_assignments", "a client's assignments (its delete cascades)", ("organization_id", "client_id"),
     False),
    ("agent_revisions", "one revision per organization", ("organization_id",), True),
    ("refresh_tokens", "token hash", ("token_hash",), True),
    ("refresh_tokens", "tokens of a user", ("organization_id", "user_id"), False),
    ("refresh_tokens", "token family", ("organization_id", "family_id"), False),
    ("conversation_handoffs", "hand-offs of a conversation in order",
     ("organization_id", "conversation_id", "created_at", "id"), False),
    ("service_assertions", "an assertion once", ("organization_id", "service_name", "jti"), True),
    ("service_assertions", "expired assertions", ("organization_id", "expires_at"), False),
    ("audit_events", "newest first", ("organization_id", "created_at", "id"), False),
    ("audit_events", "by action", ("organization_id", "action", "created_at"), False),
    ("auth_limits", "a limiter key", ("key",), True),
    ("auth_limits", "expired counters", ("expires_at",), False),
]

INDEXES_QUERY = """
    select t.relname, i.relname, ix.indisunique, ix.indpred is not null,
           array(select a.attname
                 from unnest(ix.indkey[0:ix.indnkeyatts - 1]) with ordinality k(attnum, ord)
                 join pg_attribute a on a.attrelid = ix.indrelid and a.attnum = k.attnum
                 order by k.ord)
    from pg_index ix
    join pg_class t on t.oid = ix.indrelid
    join pg_class i on i.oid = ix.indexrelid
    where t.relnamespace = 'public'::regnamespace
"""


@pytest.fixture(scope="module")
def conn(database):
    with psycopg.connect(database.admin, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def tables(conn) -> list[str]:
    rows = conn.execute("select relname from pg_class where relnamespace = 'public'::regnamespace"
                        " and relkind in ('r', 'p') order by 1").fetchall()
    return [name for (name,) in rows if name not in NOT_PRODUCT_TABLES]


@pytest.fixture(scope="module")
def tenant_tables(tables) -> list[str]:
    return [name for name in tables if name != ORGANIZATIONS and name not in NON_TENANT_TABLES]


@pytest.fixture(scope="module")
def indexes(conn) -> list[tuple[str, str, bool, bool, list[str]]]:
    return conn.execute(INDEXES_QUERY).fetchall()


def test_the_product_tables_are_there(tables):
    # the seed's 15, experiment_variants, refresh_tokens, request_ids, organizations,
    # conversation_handoffs, experiment_assignments, agent_revisions, service_assertions,
    # audit_events, auth_limits
    assert len(tables) == 25


def test_every_table_has_forced_row_level_security_and_a_tenant_policy(conn, tables):
    for table in tables:
        enabled, forced = conn.execute(
            "select relrowsecurity, relforcerowsecurity from pg_class where oid = %s::regclass",
            [table]).fetchone()
        assert (enabled, forced) == (True, True), table
        # What applies to the services' roles: exactly the tenant policy, through their group.
        # (Policies for other roles, such as the owner's behind identity's SECURITY DEFINER
        # functions, may exist too.)
        policies = conn.execute(
            "select policyname, permissive, roles::text[], cmd, qual, with_check from pg_policies"
            " where schemaname = 'public' and tablename = %s and roles && %s::name[]",
            [table, [APP_ROLE, "public", *SERVICE_ROLES]]).fetchall()
        if table in NON_TENANT_TABLES:  # no policy for the services: they see and write nothing
            assert policies == [], table
            owner_only = conn.execute("select roles::text[] from pg_policies where schemaname = 'public'"
                                      " and tablename = %s", [table]).fetchall()
            assert owner_only == [([OWNER_ROLE],)], table
            continue
        key = "id" if table == ORGANIZATIONS else "organization_id"
        check = f"({key} = ( SELECT app.current_org() AS current_org))"
        assert policies == [(f"{table}_tenant_isolation", "PERMISSIVE", [APP_ROLE], "ALL", check, check)]


def test_tenant_tables_are_keyed_by_organization(conn, tenant_tables):
    for table in tenant_tables:
        notnull = conn.execute(
            "select attnotnull from pg_attribute where attrelid = %s::regclass"
            " and attname = 'organization_id'", [table]).fetchone()
        assert notnull == (True,), table
        pk = conn.execute(
            "select pg_get_constraintdef(oid) from pg_constraint"
            " where conrelid = %s::regclass and contype = 'p'", [table]).fetchone()
        assert pk == ("PRIMARY KEY (organization_id, id)",), table
        to_org = conn.execute(
            "select pg_get_constraintdef(oid) from pg_constraint where conrelid = %s::regclass"
            " and contype = 'f' and confrelid = 'organizations'::regclass", [table]).fetchall()
        assert to_org == [("FOREIGN KEY (organization_id) REFERENCES organizations(id) ON DELETE CASCADE",)]


def test_every_index_on_a_tenant_table_leads_with_organization_id(indexes, tenant_tables):
    offenders = [(table, name, columns) for table, name, _, _, columns in indexes
                 if table in tenant_tables and columns[:1] != ["organization_id"]
                 and name not in GLOBAL_INDEXES]
    assert offenders == []


# Foreign keys to a unique key wider than (organization_id, id), led by organization_id all
# the same: an assignment's variant is one of its own experiment's variants.
WIDER_FOREIGN_KEYS = {
    "fk_experiment_assignments_variant": (["organization_id", "experiment_id", "prompt_variant_id"],
                                          ["organization_id", "experiment_id", "prompt_variant_id"]),
}


def test_every_foreign_key_between_tenant_tables_includes_organization_id(conn, tenant_tables):
    fks = conn.execute("""
        select c.conrelid::regclass::text, c.conname, c.confdeltype,
               array(select a.attname from unnest(c.conkey) with ordinality k(n, o)
                     join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.o),
               array(select a.attname from unnest(c.confkey) with ordinality k(n, o)
                     join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.o),
               array(select a.attname from unnest(c.confdelsetcols) k(n)
                     join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n)
        from pg_constraint c
        where c.contype = 'f' and c.connamespace = 'public'::regnamespace
          and c.confrelid <> 'organizations'::regclass
    """).fetchall()
    assert len(fks) == 23
    for table, name, on_delete, columns, referenced, set_null_columns in fks:
        assert table in tenant_tables, name
        if name in WIDER_FOREIGN_KEYS:
            assert (columns, referenced) == WIDER_FOREIGN_KEYS[name], name
        else:
            assert len(columns) == 2 and columns[0] == "organization_id", name
            assert referenced == ["organization_id", "id"], name
        assert on_delete in ("c", "n"), name  # CASCADE or SET NULL
        if on_delete == "n":  # SET NULL of the reference only, never of organization_id
            assert set_null_columns == [columns[1]], name


SERVICE_ROLES = [entry.db_role for entry in registry.SERVICES]
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
# Shared infrastructure every service writes (AIP-155 request ids, libs/idempotency.py).
SHARED_TABLES = {"request_ids"}
# Owned by one service (which reads it) and appended to by every service's role, never
# updated or deleted by any (the audit log, libs/audit.py).
APPEND_ONLY_SHARED = set(registry.APPEND_ONLY_SHARED)
AUTH_FUNCTIONS = ["auth.organization_id_by_slug(text)", "auth.create_organization(uuid, text, text)",
                  "auth.assert_caller(uuid, text[])"]


def table_privileges(conn, role: str, table: str) -> set[str]:
    return {p for p in TABLE_PRIVILEGES if conn.execute(
        "select has_table_privilege(%s, %s, %s)", [role, f"public.{table}", p]).fetchone()[0]}


def column_privileges(conn, role: str, table: str) -> set[str]:
    """Privileges on some column (a column grant is not a table grant; none exist here)."""
    return {p for p in ("SELECT", "INSERT", "UPDATE", "REFERENCES") if conn.execute(
        "select has_any_column_privilege(%s, %s, %s)", [role, f"public.{table}", p]).fetchone()[0]}


def owned_by(conn, role: str) -> list[tuple[str]]:
    return conn.execute(
        "select relname from pg_class where relowner = (select oid from pg_roles where rolname = %s)"
        " union all select nspname from pg_namespace where nspowner = (select oid from pg_roles where rolname = %s)"
        " union all select proname from pg_proc where proowner = (select oid from pg_roles where rolname = %s)"
        " union all select typname from pg_type where typowner = (select oid from pg_roles where rolname = %s)"
        " union all select datname from pg_database where datdba = (select oid from pg_roles where rolname = %s)",
        [role] * 5).fetchall()


def test_the_group_role_cannot_log_in_owns_nothing_and_holds_no_table_privilege(conn, tables):
    """soulkg_app is the policies' target and carries the schema and function grants; what
    its members may do to tables is granted to each of them, never to the group."""
    login, super_, bypass = conn.execute(
        "select rolcanlogin, rolsuper, rolbypassrls from pg_roles where rolname = %s", [APP_ROLE]).fetchone()
    assert (login, super_, bypass) == (False, False, False)
    assert conn.execute("select count(*) from pg_auth_members where member = %s::regrole",
                        [APP_ROLE]).fetchone() == (0,)  # a member of nothing
    assert owned_by(conn, APP_ROLE) == []
    for table in [*tables, *NOT_PRODUCT_TABLES]:
        assert table_privileges(conn, APP_ROLE, table) == set(), table
        assert column_privileges(conn, APP_ROLE, table) == set(), table
    for schema in ("public", "app", "auth"):
        assert conn.execute("select has_schema_privilege(%s, %s, 'CREATE')",
                            [APP_ROLE, schema]).fetchone() == (False,), schema
        assert conn.execute("select has_schema_privilege(%s, %s, 'USAGE')",
                            [APP_ROLE, schema]).fetchone() == (True,), schema
    for function in ["app.current_org()", *AUTH_FUNCTIONS]:
        assert conn.execute("select has_function_privilege(%s, %s, 'EXECUTE')",
                            [APP_ROLE, function]).fetchone() == (True,), function
        assert conn.execute("select has_function_privilege('public', %s, 'EXECUTE')",
                            [function]).fetchone() == (False,), function


def test_every_registered_service_has_a_role_of_its_own():
    assert len(set(SERVICE_ROLES)) == len(registry.SERVICES)
    assert not {APP_ROLE, OWNER_ROLE} & set(SERVICE_ROLES)


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_a_service_role_is_unprivileged_and_a_member_of_the_group(conn, role):
    attributes = conn.execute(
        "select rolcanlogin, rolsuper, rolbypassrls, rolinherit, rolcreatedb, rolcreaterole, rolreplication"
        " from pg_roles where rolname = %s", [role]).fetchone()
    assert attributes == (True, False, False, True, False, False, False)
    # A member of soulkg_app only, and inheriting from it (the policies TO soulkg_app apply).
    assert conn.execute("select roleid::regrole::text from pg_auth_members where member = %s::regrole",
                        [role]).fetchall() == [(APP_ROLE,)]
    assert conn.execute("select pg_has_role(%s, %s, 'USAGE')", [role, APP_ROLE]).fetchone() == (True,)
    assert conn.execute("select pg_has_role(%s, %s, 'MEMBER')", [role, OWNER_ROLE]).fetchone() == (False,)
    assert owned_by(conn, role) == []
    for schema in ("public", "app", "auth"):
        assert conn.execute("select has_schema_privilege(%s, %s, 'CREATE')",
                            [role, schema]).fetchone() == (False,), schema
        assert conn.execute("select has_schema_privilege(%s, %s, 'USAGE')",
                            [role, schema]).fetchone() == (True,), schema
    for function in ["app.current_org()", *AUTH_FUNCTIONS]:
        assert conn.execute("select has_function_privilege(%s, %s, 'EXECUTE')",
                            [role, function]).fetchone() == (True,), function


@pytest.mark.parametrize("service", [entry.name for entry in registry.SERVICES])
def test_a_service_role_has_exactly_the_privileges_on_its_own_tables(conn, tables, service):
    """The grants of migrations 0005 and 0006 are libs/registry.py's `tables`: read and write
    what the service owns (organizations: read and update; created through
    auth.create_organization), the shared request_ids; append to the audit log (its owner
    reads it too); nothing on the limiter's table (functions only); and nothing else."""
    entry = registry.service(service)
    read_write = {"SELECT", "INSERT", "UPDATE", "DELETE"}
    for table in [*tables, *NOT_PRODUCT_TABLES]:
        if table == ORGANIZATIONS and table in entry.tables:
            wanted = {"SELECT", "UPDATE"}
        elif table in APPEND_ONLY_SHARED:
            wanted = {"INSERT", "SELECT"} if table in entry.tables else {"INSERT"}
        elif table in NON_TENANT_TABLES:
            wanted = set()
        elif table in entry.tables or table in SHARED_TABLES:
            wanted = read_write
        else:
            wanted = set()
        assert table_privileges(conn, entry.db_role, table) == wanted, table
        if not wanted:
            assert column_privileges(conn, entry.db_role, table) == set(), table


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_only_identity_may_call_the_limiter(conn, role):
    """auth_limits is identity's: the limiter's functions are for its role alone."""
    for function in LIMIT_FUNCTIONS:
        allowed = conn.execute("select has_function_privilege(%s, %s, 'EXECUTE')", [role, function]).fetchone()
        assert allowed == (role == registry.owner_of("auth_limits").db_role,), (role, function)
        assert conn.execute("select has_function_privilege(%s, %s, 'EXECUTE')",
                            [APP_ROLE, function]).fetchone() == (False,), function
        assert conn.execute("select has_function_privilege('public', %s, 'EXECUTE')",
                            [function]).fetchone() == (False,), function


def test_every_product_table_is_owned_by_one_service_or_shared(tables):
    owned = [table for entry in registry.SERVICES for table in entry.tables]
    assert len(owned) == len(set(owned))
    assert sorted([*owned, *SHARED_TABLES]) == sorted(tables)


def test_no_floating_point_columns_and_money_is_numeric(conn):
    floats = conn.execute("""
        select c.relname, a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid
        where c.relnamespace = 'public'::regnamespace and a.attnum > 0 and not a.attisdropped
          and a.atttypid in ('real'::regtype, 'double precision'::regtype, 'money'::regtype)
    """).fetchall()
    assert floats == []
    types = dict(((table, column), type_) for table, column, type_ in conn.execute("""
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
        from pg_attribute a join pg_class c on c.oid = a.attrelid
        where c.relnamespace = 'public'::regnamespace and a.attname in ('base_price', 'price',
              'currency', 'rating')
    """))
    assert types == {
        ("products", "base_price"): "numeric(12,2)", ("products", "currency"): "character(3)",
        ("tours", "price"): "numeric(12,2)", ("tours", "currency"): "character(3)",
        ("partners", "rating"): "numeric(3,2)",
    }


def test_times_are_timestamptz_and_booleans_not_null(conn, tables):
    rows = conn.execute("""
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
        from pg_attribute a join pg_class c on c.oid = a.attrelid
        where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
          and a.attnum > 0 and not a.attisdropped
    """).fetchall()
    rows = [row for row in rows if row[0] in tables]
    assert [r for r in rows if r[2] in ("timestamp without time zone", "date", "json")] == []
    assert [r for r in rows if r[2] == "boolean" and not r[3]] == []
    assert [r for r in rows if r[1] in ("created_at", "updated_at") and
            (r[2], r[3]) != ("timestamp with time zone", True)] == []


def test_every_updated_at_is_maintained_by_the_trigger(conn):
    missing = conn.execute("""
        select c.relname from pg_attribute a join pg_class c on c.oid = a.attrelid
        where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' and a.attname = 'updated_at'
          and not exists (select 1 from pg_trigger t where t.tgrelid = c.oid and not t.tgisinternal
                          and t.tgfoid = 'app.touch_updated_at()'::regprocedure)
    """).fetchall()
    assert missing == []


@pytest.mark.parametrize(("table", "seed", "columns", "unique"), SEED_INDEXES,
                         ids=[f"{table}:{seed}" for table, seed, _, _ in SEED_INDEXES])
def test_seed_index_exists(indexes, table, seed, columns, unique):
    serving = [(name, is_unique, partial, cols) for t, name, is_unique, partial, cols in indexes
               if t == table and not partial and tuple(cols[:len(columns)]) == columns]
    if unique:
        serving = [s for s in serving if s[1] and tuple(s[3]) == columns]
    assert serving, f"no index on {table} serves {seed} as {columns}"
