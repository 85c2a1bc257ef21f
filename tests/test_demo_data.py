"""The demo data `make run` loads (seed section 8): once, complete, through RLS and the owning
services' roles, usable."""

from __future__ import annotations

import psycopg

from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc
from tools import demo_data

TENANT_TABLES = ["users", "clients", "conversations", "messages", "client_status_history", "products", "partners",
                 "client_products", "tours", "client_tours", "agent_configurations", "prompt_variants", "experiments",
                 "experiment_variants", "dialogue_analysis", "whatsapp_sessions"]


async def test_demo_data_loads_once_fills_every_table_and_works(service_dbs, database, identity_channel,
                                                                 crm_channel):
    first = await demo_data.load(service_dbs)  # each table through its owning service's role
    assert await demo_data.load(service_dbs) is False  # a second run reuses it
    with psycopg.connect(database.admin) as conn:
        org = conn.execute("select id from organizations where slug = %s", (demo_data.SLUG,)).fetchone()[0]
        counts = {t: conn.execute(f"select count(*) from {t} where organization_id = %s", (org,)).fetchone()[0]
                  for t in TENANT_TABLES}
        statuses = {r[0] for r in conn.execute("select distinct status::text from clients where organization_id = %s",
                                                (org,))}
        languages = {r[0] for r in conn.execute(
            "select distinct preferred_language from clients where organization_id = %s", (org,))}
        tour_statuses = {r[0] for r in conn.execute(
            "select distinct status::text from tours where organization_id = %s", (org,))}
    assert first is True
    assert all(counts[t] > 0 for t in TENANT_TABLES), counts
    assert counts["clients"] == 15 and counts["users"] == 3 and counts["partners"] == 3
    assert len(statuses) == 8 and languages == {"en", "ru", "ar", "fr", "de", "es", "pl"}
    assert {"AVAILABLE", "FULL", "COMPLETED"} <= tour_statuses

    login = await identity_pb2_grpc.AuthServiceStub(identity_channel).Login(identity_pb2.LoginRequest(
        organization_slug=demo_data.SLUG, email=demo_data.ADMIN_EMAIL, password=demo_data.PASSWORD))
    listing = await crm_pb2_grpc.ClientServiceStub(crm_channel).ListClients(
        crm_pb2.ListClientsRequest(page_size=100), metadata=[("authorization", f"Bearer {login.access_token}")])
    assert len(listing.clients) == 15
