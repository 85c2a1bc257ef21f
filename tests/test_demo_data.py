"""The demo data `make run` loads (seed section 8): through the running services' APIs, once,
complete, within every service's rules (the catalog's seats above all), usable, and finished
by the next load when one stops half-way."""

from __future__ import annotations

import functools

import psycopg
import pytest

from libs import registry
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.crm.v1 import enums_pb2 as crm_enums
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc
from tools import demo_data

# Every table that belongs to one organization (organizations itself is keyed by its id).
# Every tenant table (auth_limits holds no tenant rows: counters keyed by digests).
TENANT_TABLES = [table for entry in registry.SERVICES for table in entry.tables
                 if table not in ("organizations", "auth_limits")]
# Tables a load writes to even when there is nothing left to load: a login's session, the
# audit events of its logins, the service assertions it exchanges.
SESSION_TABLES = {"refresh_tokens", "audit_events", "service_assertions"}


@pytest.fixture(scope="module")
def addresses(stack) -> dict[str, str]:
    return {name: f"127.0.0.1:{port}" for name, port in stack.items()}


@pytest.fixture(scope="module")
def load(addresses, keys_dir):
    """demo_data.load against the in-process stack, with the webhook's and the agents' private keys."""
    return functools.partial(demo_data.load, addresses, service_keys=keys_dir / "services-private")


def org_id(database, slug: str):
    with psycopg.connect(database.admin) as conn:
        row = conn.execute("select id from organizations where slug = %s", (slug,)).fetchone()
    return row[0] if row else None


def counts(database, slug: str) -> dict[str, int]:
    org = org_id(database, slug)
    with psycopg.connect(database.admin) as conn:
        return {t: conn.execute(f"select count(*) from {t} where organization_id = %s", (org,)).fetchone()[0]
                for t in TENANT_TABLES}


def seat_violations(database, slug: str) -> list:
    """Tours whose booked seats are not the participants of their BOOKED and CONFIRMED
    bookings, exceed the capacity, or disagree with AVAILABLE / FULL."""
    with psycopg.connect(database.admin) as conn:
        return conn.execute(
            """SELECT * FROM (
                   SELECT t.id, t.status::text AS status, t.current_participants AS current, t.max_participants AS cap,
                          (SELECT coalesce(sum(ct.participants), 0) FROM client_tours ct
                           WHERE ct.organization_id = t.organization_id AND ct.tour_id = t.id
                             AND ct.status IN ('BOOKED', 'CONFIRMED')) AS held
                   FROM tours t JOIN organizations o ON o.id = t.organization_id AND o.slug = %s) seats
               WHERE current <> held OR held > coalesce(cap, held)
                  OR (status IN ('AVAILABLE', 'FULL')
                      AND status <> CASE WHEN cap IS NOT NULL AND held >= cap THEN 'FULL' ELSE 'AVAILABLE' END)""",
            (slug,)).fetchall()


def distinct(database, slug: str, sql: str) -> set:
    with psycopg.connect(database.admin) as conn:
        return {row[0] for row in conn.execute(sql, (org_id(database, slug),))}


def without_sessions(table_counts: dict[str, int]) -> dict[str, int]:
    return {t: n for t, n in table_counts.items() if t not in SESSION_TABLES}


async def test_demo_data_loads_once_through_the_services_and_works(load, database, identity_channel, crm_channel):
    assert await load() is True
    loaded = counts(database, demo_data.SLUG)
    assert await load() is False  # a second run reuses it
    assert without_sessions(counts(database, demo_data.SLUG)) == without_sessions(loaded)  # and creates nothing

    assert all(loaded[t] > 0 for t in TENANT_TABLES), loaded
    assert (loaded["clients"], loaded["users"], loaded["partners"], loaded["products"], loaded["tours"]) == (
        15, 3, 3, 6, 12)
    slug = demo_data.SLUG
    assert distinct(database, slug, "select status::text from clients where organization_id = %s") == set(
        demo_data.FUNNEL)
    assert distinct(database, slug, "select preferred_language from clients where organization_id = %s") == {
        "en", "ru", "ar", "fr", "de", "es", "pl"}
    assert distinct(database, slug, "select status::text from tours where organization_id = %s") == {
        "AVAILABLE", "FULL", "COMPLETED"}
    # Bookings in every shape the catalog allows them, a completed tour among them.
    assert distinct(database, slug, "select status::text from client_tours where organization_id = %s") == {
        "BOOKED", "CONFIRMED", "PROPOSED"}
    assert distinct(database, slug, """select t.status::text from tours t join client_tours ct
                                       on ct.tour_id = t.id and ct.organization_id = t.organization_id
                                       where t.organization_id = %s and ct.status = 'CONFIRMED'""") == {
        "AVAILABLE", "COMPLETED"}
    assert seat_violations(database, slug) == []
    # The status history: a NEW_LEAD row at creation, then every move, all HUMAN, by the managers.
    changed_by = distinct(database, slug, """select h.changed_by::text || ' ' || u.role::text
                                             from client_status_history h join users u
                                             on u.id = h.changed_by_user_id and u.organization_id = h.organization_id
                                             where h.organization_id = %s""")
    assert changed_by == {"HUMAN MANAGER"}
    # Conversations as they happen: the clients' lines, the AI's replies, a manager's after a hand-off.
    assert distinct(database, slug, "select sender::text from messages where organization_id = %s") == {
        "CLIENT", "AI", "HUMAN"}
    assert distinct(database, slug, """select c.managed_by::text || ' ' || u.role::text
                                       from conversations c join messages m
                                       on m.conversation_id = c.id and m.organization_id = c.organization_id
                                       join users u on u.id = m.sender_id and u.organization_id = m.organization_id
                                       where c.organization_id = %s""") == {"HUMAN MANAGER"}
    assert distinct(database, slug, "select status::text from messages where organization_id = %s") == {"DELIVERED"}

    login = await identity_pb2_grpc.AuthServiceStub(identity_channel).Login(identity_pb2.LoginRequest(
        organization_slug=demo_data.SLUG, email=demo_data.ADMIN_EMAIL, password=demo_data.PASSWORD))
    clients = crm_pb2_grpc.ClientServiceStub(crm_channel)
    metadata = [("authorization", f"Bearer {login.access_token}")]
    listing = await clients.ListClients(crm_pb2.ListClientsRequest(page_size=100), metadata=metadata)
    assert len(listing.clients) == 15
    closed = next(c for c in listing.clients if c.status == crm_enums.CLIENT_STATUS_CLOSED)
    history = await clients.ListClientStatusHistory(crm_pb2.ListClientStatusHistoryRequest(client_id=closed.id),
                                                    metadata=metadata)
    assert [change.new_status for change in reversed(history.changes)] == list(range(1, 9))  # the whole funnel
    assert closed.assigned_partner_id  # the partner who ran its tour


async def test_a_load_that_stopped_half_way_is_finished_by_the_next(load, database):
    slug = "soul-kg-interrupted"
    said: list[str] = []
    # Each run dies after a few calls (right after signing up, among the users, the catalog,
    # the clients ...); the next goes on from what it finds.
    limits = iter([2, 11, 23, 37, *[80] * 20])
    runs = 0
    while True:
        runs += 1
        try:
            finished = await load(slug=slug, call_limit=next(limits), report=said.append)
            break
        except demo_data.Interrupted:
            pass
    assert finished is True and runs >= 4
    assert said and all("incomplete" in line and "finishing" in line for line in said)
    assert await load(slug=slug) is False
    await load()  # the reference (loaded already when the test above ran)
    # The same data as one uninterrupted load: nothing twice, nothing missing.
    assert without_sessions(counts(database, slug)) == without_sessions(counts(database, demo_data.SLUG))
    assert seat_violations(database, slug) == []
