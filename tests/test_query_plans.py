"""The hot paths' pair lookups stay cheap whatever PostgreSQL's statistics say.

A lookup by (a parent with many rows, a parent with few) — a client's booking on a tour, a
client's interest in a product, a client's assignment in an experiment — must not walk the big
parent's rows. With statistics taken before a new tour filled up (the common case: a tour
opens and sells out between two autoanalyze runs), the planner estimates the new tour at one
booking and may pick the tour's index, then filter thousands of bookings by client: BookTour
did that under the tour's row lock, so each booking cost more than the one before (found by
`make bench`). Each test builds that state (statistics first, then many rows under one
parent) and measures what the statement touches, under custom and generic plans (asyncpg
prepares every statement, and a pooled connection keeps its generic plan)."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from libs.tenancy.database import TenantDatabase
from services.agents import repository as agents_repo
from services.catalog import repository as catalog_repo

MANY = 3000  # rows under the big parent: a scan of them touches thousands of buffers
FEW_BUFFERS = 60  # an index lookup of one row, with the statement's subqueries, touches a handful


@pytest.fixture(scope="module")
def crowd(database):
    """One organization: MANY clients, one tour, product and experiment that every client is
    in. ANALYZE runs before the rows arrive, so the statistics have never seen these parents."""
    org = uuid.uuid4()
    with psycopg.connect(database.admin, autocommit=True) as conn:
        conn.execute("insert into organizations (id, name, slug) values (%s, 'plans', %s)", (org, f"plans-{org.hex[:12]}"))
        product = conn.execute("insert into products (organization_id, name, type, base_price) "
                               "values (%s, 'Popular', 'TOUR', 100) returning id", (org,)).fetchone()[0]
        tour = conn.execute("insert into tours (organization_id, product_id, start_date, end_date) "
                            "values (%s, %s, now() + interval '30 days', now() + interval '33 days') returning id",
                            (org, product)).fetchone()[0]
        prompt = conn.execute("insert into prompt_variants (organization_id, agent_type, name, prompt) "
                              "values (%s, 'QUALIFICATION', 'v', 'p') returning id", (org,)).fetchone()[0]
        experiment = conn.execute("insert into experiments (organization_id, agent_type, name) "
                                  "values (%s, 'QUALIFICATION', 'e') returning id", (org,)).fetchone()[0]
        conn.execute("insert into experiment_variants (organization_id, experiment_id, prompt_variant_id, weight) "
                     "values (%s, %s, %s, 100)", (org, experiment, prompt))
        conn.execute("ANALYZE client_tours, client_products, experiment_assignments")
        clients = [row[0] for row in conn.execute(
            "insert into clients (organization_id, phone) "
            "select %s, '+99655' || lpad(n::text, 7, '0') from generate_series(1, %s) n returning id", (org, MANY))]
        conn.execute("insert into client_tours (organization_id, client_id, tour_id) "
                     "select %s, c, %s from unnest(%s::uuid[]) c", (org, tour, clients))
        conn.execute("insert into client_products (organization_id, client_id, product_id) "
                     "select %s, c, %s from unnest(%s::uuid[]) c", (org, product, clients))
        conn.execute("insert into experiment_assignments (organization_id, experiment_id, client_id, "
                     "prompt_variant_id, weights_version) select %s, %s, c, %s, 1 from unnest(%s::uuid[]) c",
                     (org, experiment, prompt, clients))
    return {"org": org, "client": clients[MANY // 2], "tour": tour, "product": product, "experiment": experiment}


LOOKUPS = {
    "a client's booking on a tour (BookTour, CreateBooking)":
        ("catalog", catalog_repo.FIND_BOOKING_SQL, ("client", "tour")),
    "a client's interest in a product (CreateClientProduct's conflict)":
        ("catalog", catalog_repo.FIND_CLIENT_PRODUCT_SQL, ("client", "product")),
    "a client's assignment in an experiment (ResolvePrompt)":
        ("agents", agents_repo._GET_ASSIGNMENT, ("experiment", "client")),
    "the revision and the client's assignment (ResolvePrompt, cached)":
        ("agents", agents_repo._REVISION_AND_ASSIGNMENT, ("experiment", "client")),
}


def _buffers(plan: dict) -> int:
    top = plan[0]["Plan"]
    return top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)


@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("lookup", list(LOOKUPS))
async def test_a_pair_lookup_does_not_walk_the_big_parents_rows(database, crowd, lookup, plan_mode):
    service, sql, params = LOOKUPS[lookup]
    db = await TenantDatabase.connect(database.service(service), min_size=1, max_size=1)
    try:
        async with db.transaction(crowd["org"]) as conn:
            await conn.execute(f"SET LOCAL plan_cache_mode = {plan_mode}")
            found = await conn.fetchrow(sql, *(crowd[name] for name in params))
            [[plan]] = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}",
                                        *(crowd[name] for name in params))
    finally:
        await db.close()
    assert found is not None and (found.get("client_id") or found.get("id")), "the lookup finds the row"
    touched = _buffers(json.loads(plan) if isinstance(plan, str) else plan)
    assert touched <= FEW_BUFFERS, f"{lookup}: {touched} buffers for one row of {MANY}"
