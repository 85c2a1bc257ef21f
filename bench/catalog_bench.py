"""BookTour under contention for `make bench`, each workload next to its ceiling.

Every call books a new client (one seat) on a tour with room for 100,000, so every call is a
real booking: lock the tour row, read the client's booking (none), insert it and write the
tour's seats in one statement, commit.

- "BookTour, one tour": all workers book on the same tour. Bookings of one tour queue on its
  row lock, so this is the contended case: its throughput is bounded by how long each
  transaction holds the lock, a few round trips.
- "BookTour, many tours": worker i books on its own tour i: nothing is shared.
- Ceilings: the same transaction, statement for statement and with the very same SQL text
  (services/catalog/repository.py's), over asyncpg: BEGIN with the settings and the caller
  check in one round trip; the tour locked; the client's booking read; the booking inserted
  and the seats written in one statement; COMMIT. What separates a workload from its ceiling is the service: gRPC,
  the interceptor, the servicer, the domain, the entities.

bench/run.py measures them as one interleaved group (`SUITE`); bench/loadgen.py runs the
workloads (`grpc_workload`, `sql_workload`) in their own processes.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bench.harness import Bench, Compare, Python, Suite, Workload
from bench.loadgen import Load, bearer, begin_sql, close_channels, grpc_channels, sql_pool
from services.catalog import repository as repo
from services.catalog.domain import availability
from services.catalog.policies import POLICIES

PRODUCT = "Bench BookTour"
CAPACITY = 100_000
CLIENTS = 100_000
BOOK_METHOD = "/soulkg.catalog.v1.BookingService/BookTour"
ONE, MANY = "BookTour, one tour (contended)", "BookTour, many tours"
ONE_SQL, MANY_SQL = "BookTour SQL via asyncpg, one tour", "BookTour SQL via asyncpg, many tours"

COMPARES = (
    Compare(ONE, ONE_SQL, note="(write path, contended)"),
    Compare(MANY, MANY_SQL, note="(write path)"),
    Compare(ONE, MANY, note="(cost of one tour's lock)", label="BookTour one tour vs many"),
)

# The statements of BookTour (services/catalog/service.py BookingsService.book), exactly as its
# repository runs them.
LOCK_TOUR = repo.LOCK_TOUR_SQL
FIND_BOOKING = repo.FIND_BOOKING_SQL
BOOK_INSERT = repo.BOOK_INSERT_SQL


HISTORY_TOURS, HISTORY_SEATS = 2_000, 50
HISTORY = f"Bench booked tours, {HISTORY_TOURS} x {HISTORY_SEATS}"  # the catalog's past: kept across runs


async def _history(conn: asyncpg.Connection, org: uuid.UUID) -> None:
    """Once per data set: 2,000 full tours of 50 bookings, one for each of 100,000 clients.
    Without them tours and client_tours are nearly empty whenever a run starts (the last
    run's are deleted), the planner plans BookTour's statements for tiny tables (sequential
    scans), and each connection keeps those generic plans while the tables grow by thousands
    of row versions a second, until autoanalyze happens by: every booking then cost more than
    the last, by a different amount in each run. A catalog in use is never empty."""
    if await conn.fetchval("SELECT count(*) FROM products WHERE organization_id = $1 AND name = $2", org, HISTORY):
        return
    async with conn.transaction():  # all of it or nothing: a half-made history would be kept
        await _make_history(conn, org)


async def _make_history(conn: asyncpg.Connection, org: uuid.UUID) -> None:
    product = await conn.fetchval(
        "INSERT INTO products (organization_id, name, type, base_price) VALUES ($1, $2, 'TOUR', 450) RETURNING id",
        org, HISTORY)
    start = datetime.now(UTC) - timedelta(days=400)
    await conn.execute(
        "INSERT INTO tours (organization_id, product_id, start_date, end_date, max_participants, "
        "current_participants, status) SELECT $1, $2, $3::timestamptz + n * interval '3 days', "
        "$3::timestamptz + n * interval '3 days' + interval '2 days', $4, $4, 'FULL' FROM generate_series(1, $5) n", org, product, start, HISTORY_SEATS,
        HISTORY_TOURS)
    await conn.execute("""
        INSERT INTO client_tours (organization_id, client_id, tour_id, status, participants)
        SELECT $1, c.id, t.id, 'CONFIRMED', 1
        FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM clients WHERE organization_id = $1
              ORDER BY id LIMIT $3) c
        JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM tours WHERE product_id = $2) t
          ON t.n = c.n % $4""", org, product, HISTORY_TOURS * HISTORY_SEATS, HISTORY_TOURS)


async def _prepare(admin_url: str, org: uuid.UUID, tours: int) -> tuple[list[str], list[str]]:
    """Fresh tours for this run (an earlier run's are deleted, with their bookings), the
    catalog's history, and the ids of the organization's clients."""
    conn = await asyncpg.connect(admin_url)
    try:
        await _history(conn, org)
        await conn.execute("DELETE FROM products WHERE organization_id = $1 AND name = $2", org, PRODUCT)
        product = await conn.fetchval(
            "INSERT INTO products (organization_id, name, type, base_price) VALUES ($1, $2, 'TOUR', 450) "
            "RETURNING id", org, PRODUCT)
        start = datetime.now(UTC) + timedelta(days=30)
        rows = await conn.fetch(
            "INSERT INTO tours (organization_id, product_id, start_date, end_date, max_participants) "
            "SELECT $1, $2, $3, $4, $5 FROM generate_series(1, $6) RETURNING id",
            org, product, start, start + timedelta(days=3), CAPACITY, tours)
        clients = await conn.fetch("SELECT id FROM clients WHERE organization_id = $1 ORDER BY id LIMIT $2",
                                   org, CLIENTS)
        return [str(row[0]) for row in rows], [str(row[0]) for row in clients]
    finally:
        await conn.close()


def setup(bench: Bench) -> list[Workload]:
    """Start catalog, make the tours: one for each contended workload, one per worker for
    each uncontended one."""
    ds = bench.ds
    port = bench.service("catalog")
    tours, clients = asyncio.run(_prepare(ds.urls.admin, ds.big_org, 2 + 2 * bench.concurrency))
    bench.shared["catalog.tours"] = tours
    clients_file = bench.data_dir / "catalog-clients.txt"  # too many for the spec, a command-line argument
    clients_file.write_text("\n".join(clients))
    one_grpc, one_sql = tours[:1], tours[1:2]
    many_grpc, many_sql = tours[2:2 + bench.concurrency], tours[2 + bench.concurrency:]
    grpc_spec = {"clients_file": str(clients_file), "target": f"127.0.0.1:{port}", "token": bench.token()}
    sql_spec = {"clients_file": str(clients_file), "dsn": ds.urls.service("catalog"), "org": bench.org,
                "user": bench.admin}
    # Each workload books its own quarter of the clients: no workload finds pages, locks or
    # bookings another left behind (the foreign key check locks the client's row).
    quarter = len(clients) // 4
    return [
        Workload(ONE, Python(f"{__name__}:grpc_workload", {**grpc_spec, "tours": one_grpc, "slice": [0, quarter]}),
                 server=port),
        Workload(ONE_SQL, Python(f"{__name__}:sql_workload",
                                 {**sql_spec, "tours": one_sql, "slice": [quarter, 2 * quarter]})),
        Workload(MANY, Python(f"{__name__}:grpc_workload",
                              {**grpc_spec, "tours": many_grpc, "slice": [2 * quarter, 3 * quarter]}), server=port),
        Workload(MANY_SQL, Python(f"{__name__}:sql_workload",
                                  {**sql_spec, "tours": many_sql, "slice": [3 * quarter, 4 * quarter]})),
    ]


def after(bench: Bench) -> None:
    asyncio.run(_check_seats(bench.ds.urls.admin, bench.shared["catalog.tours"]))


SUITE = Suite("catalog", COMPARES, setup, after)


async def _check_seats(admin_url: str, tours: list[str]) -> None:
    """After the load: every tour's seats are still the sum of its bookings."""
    conn = await asyncpg.connect(admin_url)
    try:
        wrong = await conn.fetchval("""
            SELECT count(*) FROM tours t WHERE t.id = ANY($1::uuid[]) AND t.current_participants <>
                (SELECT coalesce(sum(participants), 0) FROM client_tours b
                 WHERE b.organization_id = t.organization_id AND b.tour_id = t.id
                   AND b.status IN ('BOOKED', 'CONFIRMED'))""", tours)
    finally:
        await conn.close()
    if wrong:
        raise RuntimeError(f"{wrong} benchmark tours lost their seat count")


# --- the workloads, run by bench/loadgen.py ------------------------------------------------------

def _calls(spec: dict):
    """Which tour and client the next call of worker i books: worker i's tour, a new client of
    the workload's slice (25,000: more than any round books)."""
    start, end = spec["slice"]
    clients = Path(spec["clients_file"]).read_text().split()[start:end]
    tours = spec["tours"]
    counter = itertools.count()
    return lambda i: (tours[i % len(tours)], clients[next(counter) % len(clients)])


async def grpc_workload(spec: dict) -> Load:
    from soulkg.catalog.v1 import catalog_pb2

    channels = grpc_channels(spec["target"])
    book = [channel.unary_unary(BOOK_METHOD) for channel in channels]
    metadata = bearer(spec["token"])
    next_booking = _calls(spec)

    async def call(i: int) -> None:
        tour, client = next_booking(i)
        request = catalog_pb2.BookTourRequest(tour_id=tour, client_id=client, participants=1)
        await book[i % len(book)](request.SerializeToString(), metadata=metadata, timeout=10)

    return Load(call=call, close=lambda: close_channels(channels))


async def sql_workload(spec: dict) -> Load:
    pool = await sql_pool(spec["dsn"])
    # libs/tenancy/database.py's first round trip for a user's call: BEGIN, both settings and
    # the caller check with the roles BookTour's policy admits.
    roles = POLICIES["soulkg.catalog.v1.BookingService"]["BookTour"].roles
    begin = begin_sql(spec["org"], caller=spec["user"], roles=tuple(roles))
    next_booking = _calls(spec)

    async def call(i: int) -> None:
        tour_id, client_id = (uuid.UUID(value) for value in next_booking(i))
        async with pool.acquire() as conn:
            await conn.execute(begin)
            try:
                tour = await conn.fetchrow(LOCK_TOUR, tour_id)
                if await conn.fetchrow(FIND_BOOKING, client_id, tour_id) is not None:
                    raise asyncpg.UniqueViolationError("the client already has a booking on this tour")
                held = tour["current_participants"] + 1
                await conn.fetchrow(BOOK_INSERT, client_id, tour_id, "BOOKED", 1, None, held,
                                    availability(tour["max_participants"], held))
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    return Load(call=call, close=pool.close)
