"""messaging's workloads for `make bench`, each next to the ceiling it cannot beat.

    python -m bench.run --suite messaging        only these

Workloads (the issue's Benchmark section), against the benchmark's data set (bench/dataset.py:
the big organization, 100,000 clients) with a messaging server as a separate process, calling
the run's crm server:

- IngestInboundMessage, new ids: a client who already exists writes again (each worker its own
  client, so no two requests wait on one conversation row). Ceilings: crm's
  GetOrCreateClientByPhone for the same phones (ingestion calls it, so it cannot be faster) and
  ingestion's own SQL through asyncpg (the duplicate check, then the write transaction).
- IngestInboundMessage, duplicate id: a repeated delivery. Ceilings: crm's GetClient (the one
  call a duplicate still makes) and the duplicate check's SQL.
- ListMessages: the first page and a page 50,000 messages deep of a 60,000-message
  conversation (keyset: the deep page should cost what the first does), and the first page's
  SQL through asyncpg.
- StreamEvents fan-out: 100 open streams of the organization while a producer commits
  messages one by one; the latency from the producer sending its COMMIT to each stream
  receiving the event (p50/p99 over every stream and message). Ceiling: the same
  notifications on a bare LISTEN connection (PostgreSQL's own commit-to-notify latency).

Each workload runs in its own load-generator process (bench/loadgen.py with the factories
below); the fan-out measures itself, the streams and the bare LISTEN from the same commits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.harness import Bench, Compare, Grpc, Python, Suite, Workload, at_most
from bench.loadgen import Load, bearer, begin_sql, close_channels, grpc_channels, percentile, sql_pool

LIST_MESSAGES = 60_000
DEEP_POSITION = 50_000
STREAMS = 100
LIST_PHONE = "+996700099999"  # a bench client (bench/dataset.py numbers them +99670<n:07d>)
FANOUT_PHONE = "+996700099998"
FANOUT_GAP = 0.02  # seconds between the producer's commits

INGEST_NEW, GET_OR_CREATE, INGEST_SQL = ("IngestInboundMessage, new id", "crm GetOrCreateClientByPhone",
                                         "ingestion SQL via asyncpg")
INGEST_DUP, CRM_GET, DUP_SQL = ("IngestInboundMessage, duplicate id", "crm GetClient, webhook token",
                                "duplicate check SQL via asyncpg")
LIST_FIRST, LIST_DEEP, LIST_SQL = "ListMessages first page", "ListMessages page at 50,000", "ListMessages SQL first page"
FANOUT, LISTEN = f"StreamEvents fan-out, {STREAMS} streams", "LISTEN, a bare connection"

COMPARES = (
    Compare(INGEST_NEW, INGEST_SQL, note="(write path + a crm call)"),
    Compare(INGEST_NEW, GET_OR_CREATE, note="(its crm call)"),
    Compare(INGEST_DUP, CRM_GET, note="(its crm call)"),
    Compare(INGEST_DUP, DUP_SQL, note="(database path)"),
    Compare(LIST_DEEP, LIST_FIRST, "p50_ms", at_most(1.3, "(latency)"), label="ListMessages deep/first"),
    Compare(LIST_FIRST, LIST_SQL, note="(database path)"),
    Compare(FANOUT, LISTEN, "p50_ms", note="(latency; LISTEN is the floor)"),
)


# --- the data ----------------------------------------------------------------------------------

async def _conversation(conn: asyncpg.Connection, org: uuid.UUID, phone: str) -> uuid.UUID:
    client = await conn.fetchval("SELECT id FROM clients WHERE organization_id = $1 AND phone = $2", org, phone)
    existing = await conn.fetchval(
        "SELECT id FROM conversations WHERE organization_id = $1 AND client_id = $2 AND status = 'ACTIVE'", org, client)
    return existing or await conn.fetchval(
        "INSERT INTO conversations (organization_id, client_id, channel_address, last_inbound_at) "
        "VALUES ($1, $2, $3, now()) RETURNING id", org, client, phone)


async def _prepare(admin_url: str, org: uuid.UUID) -> dict:
    """A conversation with LIST_MESSAGES messages (loaded once, by COPY) and one for the fan-out."""
    conn = await asyncpg.connect(admin_url)
    try:
        listed = await _conversation(conn, org, LIST_PHONE)
        have = await conn.fetchval("SELECT count(*) FROM messages WHERE organization_id = $1 AND conversation_id = $2",
                                   org, listed)
        if have < LIST_MESSAGES:
            start = datetime(2025, 1, 1, tzinfo=UTC)
            await conn.copy_records_to_table("messages", columns=[
                "organization_id", "conversation_id", "direction", "sender", "content", "status", "created_at"],
                records=[(org, listed, "INCOMING", "CLIENT", f"bench message {n}", "DELIVERED",
                          start + timedelta(seconds=n)) for n in range(have, LIST_MESSAGES)])
            await conn.execute("ANALYZE messages")
        deep = await conn.fetchrow(
            "SELECT id, created_at FROM messages WHERE organization_id = $1 AND conversation_id = $2 "
            "ORDER BY created_at DESC, id DESC OFFSET $3 LIMIT 1", org, listed, DEEP_POSITION)
        duplicate = await conn.fetchval(
            "SELECT whatsapp_message_id FROM messages WHERE organization_id = $1 AND whatsapp_message_id = 'bench-dup'",
            org)
        fanout = await _conversation(conn, org, FANOUT_PHONE)
        return {"list_conversation": str(listed), "deep": [deep["created_at"].isoformat(), str(deep["id"])],
                "duplicate_ready": duplicate is not None, "fanout_conversation": str(fanout)}
    finally:
        await conn.close()


# --- the suite -------------------------------------------------------------------------------

def setup(bench: Bench) -> list[Workload]:
    from libs.pagination import PageTokenCodec
    from soulkg.crm.v1 import crm_pb2
    from soulkg.messaging.v1 import messaging_pb2 as pb

    ds = bench.ds
    data = asyncio.run(_prepare(ds.urls.admin, ds.big_org))
    webhook, admin = bench.service_token("webhook"), bench.token()
    crm = bench.service("crm")
    messaging = bench.service("messaging", SOULKG_SERVICE_ADDRESSES=json.dumps({"crm": f"127.0.0.1:{crm}"}))

    codec = PageTokenCodec(bench.page_secret.encode())
    deep_token = codec.encode(ds.big_org, codec.fingerprint("messages", data["list_conversation"]), data["deep"])
    list_first = pb.ListMessagesRequest(conversation_id=data["list_conversation"], page_size=50)
    list_deep = pb.ListMessagesRequest(conversation_id=data["list_conversation"], page_size=50, page_token=deep_token)
    duplicate = pb.IngestInboundMessageRequest(channel=1, from_phone=LIST_PHONE, content="once more",
                                               external_message_id="bench-dup")
    if not data["duplicate_ready"]:  # the first delivery of the duplicate id
        import grpc

        with grpc.insecure_channel(f"127.0.0.1:{messaging}") as channel:
            channel.unary_unary(INGEST)(duplicate.SerializeToString(), metadata=bearer(webhook), timeout=10)
    client_id = asyncio.run(_client_id(ds.urls.admin, ds.big_org, LIST_PHONE))
    conversations = asyncio.run(_worker_conversations(ds.urls.admin, ds.big_org, bench.concurrency))
    roles = sorted(_policy("MessageService", "ListMessages").roles)

    def load(factory: str, **spec) -> Python:
        return Python(f"{__name__}:{factory}", spec)

    sql = {"dsn": ds.urls.service("messaging"), "org": bench.org}
    return [
        Workload(INGEST_NEW, load("ingest_new", target=f"127.0.0.1:{messaging}", token=webhook), server=messaging),
        Workload(GET_OR_CREATE, load("get_or_create", target=f"127.0.0.1:{crm}", token=webhook), server=crm),
        Workload(INGEST_SQL, load("ingestion_sql", **sql, conversations=conversations)),
        Workload(INGEST_DUP, Grpc(messaging, INGEST, duplicate.SerializeToString(), webhook)),
        Workload(CRM_GET, Grpc(crm, "/soulkg.crm.v1.ClientService/GetClient",
                               crm_pb2.GetClientRequest(id=str(client_id)).SerializeToString(), webhook)),
        Workload(DUP_SQL, load("duplicate_sql", **sql)),
        Workload(LIST_FIRST, Grpc(messaging, LIST, list_first.SerializeToString(), admin)),
        Workload(LIST_DEEP, Grpc(messaging, LIST, list_deep.SerializeToString(), admin)),
        Workload(LIST_SQL, load("list_sql", **sql, conversation=data["list_conversation"], caller=bench.admin,
                                roles=roles)),
        Workload(FANOUT, load("fanout", **sql, target=f"127.0.0.1:{messaging}", token=admin,
                              conversation=data["fanout_conversation"]), also=(LISTEN,)),
    ]


INGEST = "/soulkg.messaging.v1.MessageService/IngestInboundMessage"
LIST = "/soulkg.messaging.v1.MessageService/ListMessages"
SUITE = Suite("messaging", COMPARES, setup)


def _policy(service: str, method: str):
    from services.messaging.policies import POLICIES

    return POLICIES[f"soulkg.messaging.v1.{service}"][method]


# --- the load generators (bench/loadgen.py runs them in their own processes) -----------------

def _phone(i: int) -> str:  # worker i's own existing client
    return f"+99670{i:07d}"


async def _grpc(spec: dict, method: str, body) -> Load:
    channels = grpc_channels(spec["target"])
    calls = [channel.unary_unary(method) for channel in channels]
    metadata = bearer(spec["token"])

    async def call(i: int) -> None:
        await calls[i % len(calls)](body(i), metadata=metadata, timeout=10)

    return Load(call=call, close=lambda: close_channels(channels))


async def ingest_new(spec: dict) -> Load:
    """A client who already exists writes again: each worker its own client, a new id each time."""
    from soulkg.messaging.v1 import messaging_pb2 as pb

    run, counter = f"{os.getpid()}-{time.time_ns()}", itertools.count()
    return await _grpc(spec, INGEST, lambda i: pb.IngestInboundMessageRequest(
        channel=1, from_phone=_phone(i), content="Здравствуйте! Есть туры на Иссык-Куль в июле?",
        external_message_id=f"bench-{run}-{next(counter)}").SerializeToString())


async def get_or_create(spec: dict) -> Load:
    from soulkg.crm.v1 import crm_pb2

    return await _grpc(spec, "/soulkg.crm.v1.ClientService/GetOrCreateClientByPhone",
                       lambda i: crm_pb2.GetOrCreateClientByPhoneRequest(phone=_phone(i)).SerializeToString())


async def _sql(spec: dict, transaction) -> Load:
    pool = await sql_pool(spec["dsn"])
    begin = begin_sql(spec["org"], caller=spec.get("caller"), roles=tuple(spec.get("roles", ())))

    async def call(i: int) -> None:
        async with pool.acquire() as conn:
            await transaction(conn, begin, i)

    return Load(call=call, close=pool.close)


async def list_sql(spec: dict) -> Load:
    """ListMessages' transaction, with messaging's repository (a user's call: the caller check too)."""
    from services.messaging import repository as repo

    conversation = uuid.UUID(spec["conversation"])

    async def transaction(conn, begin, i):
        await conn.execute(begin)
        await repo.list_messages(conn, conversation, None, 51)
        await conn.execute("COMMIT")

    return await _sql(spec, transaction)


async def duplicate_sql(spec: dict) -> Load:
    """A repeated delivery's transaction: the duplicate check finds the stored message."""
    from services.messaging import repository as repo

    async def transaction(conn, begin, i):
        await conn.execute(begin)
        stored = await repo.message_by_external_id(conn, "bench-dup")
        if stored is not None:
            await repo.get_conversation(conn, stored.conversation_id)
        await conn.execute("COMMIT")

    return await _sql(spec, transaction)


async def ingestion_sql(spec: dict) -> Load:
    """messaging's own statements for one ingestion, as the service runs them: the duplicate
    check, then the write transaction."""
    from services.messaging import repository as repo

    run, counter = f"{os.getpid()}-{time.time_ns()}", itertools.count()
    conversations = [uuid.UUID(c) for c in spec["conversations"]]

    async def transaction(conn, begin, i):
        external = f"sql-{run}-{next(counter)}"
        await conn.execute(begin)
        stored = await repo.message_by_external_id(conn, external)
        if stored is not None:
            await repo.get_conversation(conn, stored.conversation_id)
        await conn.execute("COMMIT")
        await conn.execute(begin)
        conversation = await repo.get_conversation(conn, conversations[i % len(conversations)], for_update=True)
        message = await repo.insert_inbound(conn, conversation.id, "Здравствуйте!", "ru", external, None)
        await repo.record_inbound(conn, conversation.id, message.created_at, "ru")
        await conn.execute("COMMIT")

    return await _sql(spec, transaction)


async def fanout(spec: dict) -> Load:
    """STREAMS open streams and a bare LISTEN connection, kept across rounds; in each round a
    producer commits messages one by one, FANOUT_GAP apart. Latency: from the producer sending
    its COMMIT to each stream (and the LISTEN connection) receiving the event."""
    from grpc import aio

    from soulkg.messaging.v1 import messaging_pb2 as pb
    from soulkg.messaging.v1 import messaging_pb2_grpc as pb_grpc

    committed: dict[str, float] = {}
    received: list[tuple[str, float]] = []
    listened: list[tuple[str, float]] = []
    channels = grpc_channels(spec["target"])
    metadata = bearer(spec["token"])
    streams = [pb_grpc.MessageServiceStub(channels[i % len(channels)]).StreamEvents(
        pb.StreamEventsRequest(), metadata=metadata) for i in range(STREAMS)]
    await asyncio.gather(*(stream.read() for stream in streams))  # each says "subscribed" first

    async def read(stream):  # read(), not `async for`: grpc.aio does not mix the two on one call
        while (event := await stream.read()) is not aio.EOF:
            if event.WhichOneof("kind") == "message_created":
                received.append((event.message_created.id, time.perf_counter()))

    readers = [asyncio.create_task(read(stream)) for stream in streams]
    listener = await asyncpg.connect(spec["dsn"])
    await listener.add_listener("messaging_events", lambda c, p, ch, payload: listened.append(
        (json.loads(payload)["i"], time.perf_counter())))
    producer = await asyncpg.connect(spec["dsn"])
    begin = begin_sql(spec["org"])
    conversation = uuid.UUID(spec["conversation"])

    async def produce(seconds: float) -> int:
        count, stop_at = 0, time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            await producer.execute(begin)
            message_id = await producer.fetchval(
                "INSERT INTO messages (organization_id, conversation_id, direction, sender, content, status) "
                "VALUES ((SELECT app.current_org()), $1, 'INCOMING', 'CLIENT', $2, 'DELIVERED') RETURNING id",
                conversation, f"fan-out {count}")
            # From the COMMIT sent: the bare LISTEN connection, in this same event loop, may read
            # its notification before the producer reads COMMIT's answer.
            committed[str(message_id)] = time.perf_counter()
            await producer.execute("COMMIT")
            count += 1
            await asyncio.sleep(FANOUT_GAP)
        return count

    async def one_round(concurrency: int, warmup: float, seconds: float) -> dict:
        await produce(warmup)
        await _drain(received, listened)
        committed.clear()
        received.clear()
        listened.clear()
        started = time.perf_counter()
        count = await produce(seconds)
        await _drain(received, listened, count)
        elapsed = time.perf_counter() - started

        def result(pairs, expected):
            values = sorted((t - committed[i]) * 1000 for i, t in pairs if i in committed)
            missing = expected - len(values)
            return {"rps": len(values) / elapsed, "p50_ms": percentile(values, 0.5),
                    "p99_ms": percentile(values, 0.99), "calls": len(values),
                    "errors": {"event missing": missing} if missing > 0 else {}}

        return {FANOUT: result(received, count * STREAMS), LISTEN: result(listened, count)}

    async def close() -> None:
        for task in readers:
            task.cancel()
        await close_channels(channels)
        await listener.close()
        await producer.close()

    return Load(round=one_round, close=close)


async def _drain(received: list, listened: list, count: int | None = None) -> None:
    """Wait for the events still on their way (2 s at most)."""
    for _ in range(40):
        if count is not None and len(received) >= count * STREAMS and len(listened) >= count:
            return
        await asyncio.sleep(0.05)


async def _client_id(admin_url: str, org: uuid.UUID, phone: str) -> uuid.UUID:
    conn = await asyncpg.connect(admin_url)
    try:
        return await conn.fetchval("SELECT id FROM clients WHERE organization_id = $1 AND phone = $2", org, phone)
    finally:
        await conn.close()


async def _worker_conversations(admin_url: str, org: uuid.UUID, count: int) -> list[str]:
    """One open conversation per SQL worker (the same clients the ingest workload writes as)."""
    conn = await asyncpg.connect(admin_url)
    try:
        return [str(await _conversation(conn, org, f"+99670{i:07d}")) for i in range(count)]
    finally:
        await conn.close()
