"""The benchmark's database: 1,000,000 clients in 100 organizations, one of them with
100,000, bulk-loaded with COPY into a cluster kept in .data/bench (reused when present)."""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from libs import registry
from libs.db import migrate
from libs.db.embedded import EmbeddedPostgres
from libs.db.provision import APP_ROLE, DatabaseUrls, provision, service_roles, with_credentials

BIG_ORG_CLIENTS = 100_000
TOTAL_CLIENTS = 1_000_000
ORGANIZATIONS = 100
BYPASS_ROLE = "soulkg_bench_bypass"  # exists only in the benchmark's cluster: crm's role plus BYPASSRLS
CRM_ROLE = registry.service("crm").db_role
STATUSES = ["NEW_LEAD", "QUALIFIED", "WARMED", "PROPOSAL_SENT", "NEGOTIATION", "SOLD", "SERVICE", "CLOSED"]
LANGUAGES = ["en", "ru", "ar", "fr", "de", "es", "pl"]


@dataclass
class Dataset:
    urls: DatabaseUrls
    bypass_url: str
    big_org: uuid.UUID
    big_org_admin: uuid.UUID  # a real user: status history rows reference it
    server: EmbeddedPostgres


async def _admin_user(admin_url: str, org: uuid.UUID) -> uuid.UUID:
    conn = await asyncpg.connect(admin_url)
    try:
        user = await conn.fetchval("SELECT id FROM users WHERE organization_id = $1 AND role = 'ADMIN'", org)
        return user or await conn.fetchval(
            "INSERT INTO users (organization_id, email, password_hash, role) VALUES ($1, 'bench@example.com', "
            "'not-a-hash', 'ADMIN') RETURNING id", org)
    finally:
        await conn.close()


async def _load(admin_url: str) -> uuid.UUID:
    conn = await asyncpg.connect(admin_url)
    try:
        existing = await conn.fetchval("SELECT count(*) FROM clients")
        if existing >= TOTAL_CLIENTS:
            return await conn.fetchval("SELECT id FROM organizations WHERE slug = 'bench-000'")
        await conn.execute("TRUNCATE organizations CASCADE")
        org_ids = [uuid.uuid4() for _ in range(ORGANIZATIONS)]
        await conn.copy_records_to_table(
            "organizations", columns=["id", "name", "slug"],
            records=[(org, f"Bench {i:03d}", f"bench-{i:03d}") for i, org in enumerate(org_ids)])
        rng = random.Random(7)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        per_small = (TOTAL_CLIENTS - BIG_ORG_CLIENTS) // (ORGANIZATIONS - 1)
        for index, org in enumerate(org_ids):
            count = BIG_ORG_CLIENTS if index == 0 else per_small + (1 if index <= (TOTAL_CLIENTS - BIG_ORG_CLIENTS) % (ORGANIZATIONS - 1) else 0)
            records = []
            for n in range(count):
                created = start + timedelta(seconds=rng.randrange(0, 2 * 365 * 86400), microseconds=n)
                records.append((uuid.uuid4(), org, f"+99670{n:07d}", None, f"Client{n}", "Bench",
                                rng.choice(STATUSES), rng.choice(LANGUAGES), created, created))
            await conn.copy_records_to_table(
                "clients", records=records,
                columns=["id", "organization_id", "phone", "email", "first_name", "last_name", "status",
                         "preferred_language", "created_at", "updated_at"])
        await conn.execute("ANALYZE")
        return org_ids[0]
    finally:
        await conn.close()


async def _ensure_bypass_role(admin_url: str, password: str) -> None:
    """The RLS-cost baseline for crm: exactly crm's role (a member of the policies' group, its
    table grants copied from the catalog), plus BYPASSRLS."""
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", BYPASS_ROLE)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(f"{verb} ROLE {BYPASS_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT BYPASSRLS"
                           f" PASSWORD '{password}'")
        await conn.execute(f"GRANT CONNECT ON DATABASE soulkg_bench TO {BYPASS_ROLE}")
        await conn.execute(f"GRANT {APP_ROLE} TO {BYPASS_ROLE}")  # schema usage, function EXECUTE
        # What earlier code granted directly: nothing beyond crm's.
        await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {BYPASS_ROLE}")
        await conn.execute(f"REVOKE ALL ON SCHEMA app, public FROM {BYPASS_ROLE}")
        await conn.execute(f"REVOKE ALL ON FUNCTION app.current_org() FROM {BYPASS_ROLE}")
        grants = await conn.fetch(
            "SELECT table_name, string_agg(privilege_type, ', ') AS privileges"
            " FROM information_schema.role_table_grants WHERE grantee = $1 AND table_schema = 'public'"
            " GROUP BY table_name", CRM_ROLE)
        for grant in grants:
            await conn.execute(f"GRANT {grant['privileges']} ON {grant['table_name']} TO {BYPASS_ROLE}")
    finally:
        await conn.close()


async def _forget_earlier_writes(admin_url: str) -> None:
    """The write workloads create clients named 'Load'; drop an earlier run's so phones are free."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("DELETE FROM clients WHERE first_name = 'Load'")
    finally:
        await conn.close()


async def _settle(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def settle(ds: Dataset) -> None:
    """Before each group of workloads: every table vacuumed and analyzed, dirty pages written.
    The setups and earlier groups delete and insert thousands of rows; left alone, autovacuum
    and the checkpointer do that work in whichever rounds they happen to hit, and the planner
    plans on statistics from before the rows arrived, so a run's ratios would depend on what
    ran before them. (About 0.3 s: all-visible pages are skipped, ANALYZE samples.)"""
    asyncio.run(_settle(ds.urls.admin))


def prepare(data_dir: Path) -> Dataset:
    server = EmbeddedPostgres(data_dir, durable=False).start()
    password = (data_dir / "role-password").read_text().strip() if (data_dir / "role-password").exists() else None
    if password is None:
        password = secrets.token_urlsafe(16)
        (data_dir / "role-password").write_text(password)
    urls = provision(server.admin_url, "soulkg_bench", password, dict.fromkeys(service_roles(), password))
    migrate.upgrade(urls.owner)
    asyncio.run(_ensure_bypass_role(urls.admin, password))
    big_org = asyncio.run(_load(urls.admin))
    asyncio.run(_forget_earlier_writes(urls.admin))
    admin = asyncio.run(_admin_user(urls.admin, big_org))
    return Dataset(urls, with_credentials(urls.service("crm"), BYPASS_ROLE, password), big_org, admin, server)
