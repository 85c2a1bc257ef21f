"""The migrations go up, all the way down, and up again, and give the schema the suite runs on."""

from __future__ import annotations

import psycopg
import pytest

from libs.db import migrate

# Schemas the migrations own (not PostgreSQL's own).
USER_SCHEMA = ("{} in (select oid from pg_namespace where nspname not like 'pg\\_%'"
               " and nspname <> 'information_schema')")

# Everything the schema is made of, by name (no OIDs), so two databases can be compared.
CATALOG_QUERIES = {
    "tables": f"""
        select n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
               pg_get_userbyid(c.relowner), coalesce(c.relacl::text[], '{{}}')
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where {USER_SCHEMA.format("n.oid")} and c.relkind in ('r', 'p', 'v', 'm', 'S')
        order by 1, 2""",
    "columns": """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), coalesce(a.attacl::text[], '{}')
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
        order by 1, a.attnum""",
    "constraints": """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        from pg_constraint where connamespace = 'public'::regnamespace order by 1, 2""",
    "indexes": """
        select tablename, indexname, indexdef from pg_indexes
        where schemaname = 'public' order by 1, 2""",
    "policies": """
        select tablename, policyname, permissive, roles::text[], cmd, qual, with_check
        from pg_policies order by 1, 2""",
    "triggers": """
        select tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
        from pg_trigger where not tgisinternal order by 1, 2""",
    "enums": """
        select t.typname, array_agg(e.enumlabel order by e.enumsortorder)
        from pg_type t join pg_enum e on e.enumtypid = t.oid
        where t.typnamespace = 'public'::regnamespace group by 1 order by 1""",
    "functions": f"""
        select p.oid::regprocedure::text, pg_get_functiondef(p.oid), coalesce(p.proacl::text[], '{{}}')
        from pg_proc p where {USER_SCHEMA.format("p.pronamespace")}
          and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                          and d.objid = p.oid and d.deptype = 'e')
        order by 1""",
    "schemas": f"""
        select nspname, pg_get_userbyid(nspowner), coalesce(nspacl::text[], '{{}}')
        from pg_namespace where {USER_SCHEMA.format("oid")} order by 1""",
    "extensions": "select extname from pg_extension order by 1",
}


def catalog_summary(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in CATALOG_QUERIES.items()}


def leftovers(url: str) -> dict[str, list]:
    """What of the schema is still there after a downgrade to base."""
    with psycopg.connect(url) as conn:
        return {
            "tables": conn.execute(
                "select relname from pg_class where relnamespace = 'public'::regnamespace"
                " and relkind in ('r', 'p', 'v', 'm') and relname <> 'alembic_version'").fetchall(),
            "types": conn.execute(
                "select typname from pg_type where typnamespace = 'public'::regnamespace"
                " and typtype in ('e', 'd')").fetchall(),
            "schemas": conn.execute(
                f"select nspname from pg_namespace where {USER_SCHEMA.format('oid')}"
                " and nspname <> 'public'").fetchall(),
            "policies": conn.execute("select policyname from pg_policies").fetchall(),
        }


@pytest.fixture(scope="module")
def fresh(make_database):
    return make_database("migrations")


def test_upgrade_downgrade_upgrade(fresh, database):
    migrate.upgrade(fresh.owner, "head")
    first = catalog_summary(fresh.admin)

    migrate.downgrade(fresh.owner, "base")
    assert leftovers(fresh.admin) == {"tables": [], "types": [], "schemas": [], "policies": []}
    with psycopg.connect(fresh.admin) as conn:
        assert conn.execute("select extname from pg_extension where extname = 'vector'").fetchone()

    migrate.upgrade(fresh.owner, "head")
    again = catalog_summary(fresh.admin)
    for part in CATALOG_QUERIES:  # part by part, naming what differs
        assert again[part] == first[part], (part, sorted(set(map(str, first[part])) ^ set(map(str, again[part]))))

    # ... and it is exactly the schema of the suite's database.
    suite = catalog_summary(database.admin)
    for part in CATALOG_QUERIES:
        assert again[part] == suite[part], (part, sorted(set(map(str, suite[part])) ^ set(map(str, again[part]))))


def test_service_roles_migration_goes_down_to_exactly_0004(make_database):
    """0005 moves the table grants from soulkg_app to the services' roles; its downgrade gives
    0004's grants back, exactly."""
    urls = make_database("grants")
    migrate.upgrade(urls.owner, "0004")
    before = catalog_summary(urls.admin)
    migrate.upgrade(urls.owner, "0005")
    assert catalog_summary(urls.admin)["tables"] != before["tables"]
    migrate.downgrade(urls.owner, "0004")
    assert catalog_summary(urls.admin) == before


def test_limits_and_audit_migration_goes_down_to_exactly_0008(make_database):
    """0009 adds identity's limiter, service assertions and the audit log with their grants
    and functions; its downgrade leaves exactly 0008's schema."""
    urls = make_database("audit")
    migrate.upgrade(urls.owner, "0008")
    before = catalog_summary(urls.admin)
    migrate.upgrade(urls.owner, "0009")
    assert catalog_summary(urls.admin)["tables"] != before["tables"]
    migrate.downgrade(urls.owner, "0008")
    assert catalog_summary(urls.admin) == before
