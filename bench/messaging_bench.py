"""messaging's workloads for `make bench`, each next to the ceiling it cannot beat.

    python -m bench.messaging_bench [--quick]          standalone: its own table
    bench/run.py: `messaging_bench.run(...)` while its servers are up, `rows(...)` in its table

Workloads (the issue's Benchmark section), against the benchmark's data set (bench/dataset.py:
the big organization, 100,000 clients) with a crm and a messaging server as separate processes:

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
  messages one by one; the latency from the producer's COMMIT returning to each stream
  receiving the event (p50/p99 over every stream and message). Ceiling: the same
  notifications on a bare LISTEN connection (PostgreSQL's own commit-to-notify latency).

Each workload runs in a separate process (`python -m bench.messaging_bench load '<spec>'`),
closed loop, warm-up then rounds, as bench/loadgen.py does (its loop is reused).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "gen" / "python")]

from bench.loadgen import CHANNELS, _closed_loop, _percentile  # noqa: E402

LIST_MESSAGES = 60_000
DEEP_POSITION = 50_000
STREAMS = 100
LIST_PHONE = "+996700099999"  # a bench client (bench/dataset.py numbers them +99670<n:07d>)
FANOUT_PHONE = "+996700099998"
BEGIN = ("BEGIN; SELECT set_config('app.current_organization_id', '{org}', true), "
         "set_config('statement_timeout', '10000ms', true)")


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


# --- the load generator (a separate process per workload) ---------------------------------------

async def _grpc(spec: dict):
    from grpc import aio

    from soulkg.crm.v1 import crm_pb2
    from soulkg.messaging.v1 import messaging_pb2 as pb

    channels = [aio.insecure_channel(spec["target"], options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(CHANNELS)]
    metadata = (("authorization", f"Bearer {spec['token']}"),)
    calls = [channel.unary_unary(spec["method"]) for channel in channels]
    kind, run = spec["kind"], f"{os.getpid()}-{time.time_ns()}"
    counter = itertools.count()

    def phone(i: int) -> str:  # worker i's own existing client
        return f"+99670{i:07d}"

    if kind == "fixed":
        payload = bytes.fromhex(spec["request_hex"])

        def body(i):
            return payload
    elif kind == "ingest_new":
        def body(i):
            return pb.IngestInboundMessageRequest(
                channel=1, from_phone=phone(i), content="Здравствуйте! Есть туры на Иссык-Куль в июле?",
                external_message_id=f"bench-{run}-{next(counter)}").SerializeToString()
    elif kind == "get_or_create":
        def body(i):
            return crm_pb2.GetOrCreateClientByPhoneRequest(phone=phone(i)).SerializeToString()
    else:
        raise SystemExit(f"unknown grpc workload {kind}")

    async def call(i):
        await calls[i % CHANNELS](body(i), metadata=metadata, timeout=10)

    try:
        return await _closed_loop(call, spec["concurrency"], spec["warmup"], spec["rounds"], spec["seconds"])
    finally:
        for channel in channels:
            await channel.close()


async def _sql(spec: dict):
    """messaging's own statements for one ingestion, as the service runs them."""
    from services.messaging import repository as repo

    async def no_reset(conn):
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")

    pool = await asyncpg.create_pool(spec["dsn"], min_size=10, max_size=10, reset=no_reset)
    begin = BEGIN.format(org=uuid.UUID(spec["org"]))
    run, counter = f"{os.getpid()}-{time.time_ns()}", itertools.count()
    conversations = [uuid.UUID(c) for c in spec["conversations"]]

    async def call(i):
        if spec["kind"] == "sql_list":
            async with pool.acquire() as conn:
                await conn.execute(begin)
                await repo.list_messages(conn, uuid.UUID(spec["conversation"]), None, 51)
                await conn.execute("COMMIT")
            return
        async with pool.acquire() as conn:
            external = "bench-dup" if spec["kind"] == "sql_duplicate" else f"sql-{run}-{next(counter)}"
            await conn.execute(begin)
            stored = await repo.message_by_external_id(conn, external)
            if stored is not None:
                await repo.get_conversation(conn, stored.conversation_id)
            await conn.execute("COMMIT")
            if spec["kind"] == "sql_duplicate":
                return
            await conn.execute(begin)
            conversation = await repo.get_conversation(conn, conversations[i % len(conversations)], for_update=True)
            message = await repo.insert_inbound(conn, conversation.id, "Здравствуйте!", "ru", external, None)
            await repo.record_inbound(conn, conversation.id, message.created_at, "ru")
            await conn.execute("COMMIT")

    try:
        return await _closed_loop(call, spec["concurrency"], spec["warmup"], spec["rounds"], spec["seconds"])
    finally:
        await pool.close()


async def _fanout(spec: dict) -> dict:
    """STREAMS open streams and a bare LISTEN connection; a producer commits messages one by one."""
    from grpc import aio

    from soulkg.messaging.v1 import messaging_pb2 as pb
    from soulkg.messaging.v1 import messaging_pb2_grpc as pb_grpc

    committed: dict[str, float] = {}
    received: list[tuple[str, float]] = []
    listened: list[tuple[str, float]] = []
    channels = [aio.insecure_channel(spec["target"]) for _ in range(CHANNELS)]
    metadata = (("authorization", f"Bearer {spec['token']}"),)
    streams = [pb_grpc.MessageServiceStub(channels[i % CHANNELS]).StreamEvents(pb.StreamEventsRequest(),
                                                                                metadata=metadata)
               for i in range(STREAMS)]
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
    begin = BEGIN.format(org=uuid.UUID(spec["org"]))
    count = spec["messages"]
    started = time.perf_counter()
    for n in range(count):
        await producer.execute(begin)
        message_id = await producer.fetchval(
            "INSERT INTO messages (organization_id, conversation_id, direction, sender, content, status) "
            "VALUES ((SELECT app.current_org()), $1, 'INCOMING', 'CLIENT', $2, 'DELIVERED') RETURNING id",
            uuid.UUID(spec["conversation"]), f"fan-out {n}")
        await producer.execute("COMMIT")
        committed[str(message_id)] = time.perf_counter()
        await asyncio.sleep(spec["gap"])
    for _ in range(200):  # the last events still on their way (10 s at most)
        if len(received) >= count * STREAMS:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    for task in readers:
        task.cancel()
    for channel in channels:
        await channel.close()
    await listener.close()
    await producer.close()

    def latencies(pairs):
        return sorted((t - committed[i]) * 1000 for i, t in pairs if i in committed)

    streams_ms, listen_ms = latencies(received), latencies(listened)
    return {"streams": {"rps": len(streams_ms) / elapsed, "p50_ms": _percentile(streams_ms, 0.5),
                        "p99_ms": _percentile(streams_ms, 0.99), "errors": count * STREAMS - len(streams_ms)},
            "listen": {"rps": len(listen_ms) / elapsed, "p50_ms": _percentile(listen_ms, 0.5),
                       "p99_ms": _percentile(listen_ms, 0.99), "errors": count - len(listen_ms)}}


def _load(spec: dict):
    if spec["via"] == "fanout":
        return asyncio.run(_fanout(spec))
    return asyncio.run(_grpc(spec) if spec["via"] == "grpc" else _sql(spec))


def _measure(spec: dict, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.messaging_bench", "load", json.dumps(spec)], cwd=REPO,
                         env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if spec["via"] == "fanout":
        return result
    errors = result.pop()["errors"]
    return {"rps": median(r["rps"] for r in result), "p50_ms": median(r["p50_ms"] for r in result),
            "p99_ms": median(r["p99_ms"] for r in result), "errors": errors, "rounds": result,
            "generator": "python grpc.aio / asyncpg"}


# --- the run -----------------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(ds, keys: Path, servers, timing: dict, concurrency: int, env: dict) -> dict:
    """Start crm and messaging, measure every workload; returns {workload name: result}.
    `servers` is bench/run.py's Servers (stopped by the caller)."""
    from libs.pagination import PageTokenCodec
    from libs.tenancy.tokens import load_signer
    from soulkg.messaging.v1 import messaging_pb2 as pb

    data = asyncio.run(_prepare(ds.urls.admin, ds.big_org))
    secret = "messaging-bench-page-token-secret"
    webhook, _ = load_signer(keys).issue(organization_id=ds.big_org, subject="service:webhook", kind="service",
                                         ttl_seconds=3600)
    admin, _ = load_signer(keys).issue(organization_id=ds.big_org, subject=str(ds.big_org_admin), role="ADMIN",
                                       ttl_seconds=3600)
    base = {**env, "SOULKG_KEYS_DIR": str(keys), "SOULKG_PAGE_TOKEN_SECRET": secret, "SOULKG_DB_POOL_SIZE": "10"}
    crm = servers.start(["-m", "services.crm.server"], {
        **base, "SOULKG_DATABASE_URL": ds.urls.service("crm"), "SOULKG_PORT": str(port := free_port())}, port)
    messaging = servers.start(["-m", "services.messaging.server"], {
        **base, "SOULKG_DATABASE_URL": ds.urls.service("messaging"), "SOULKG_PORT": str(port := free_port()),
        "SOULKG_SERVICE_ADDRESSES": json.dumps({"crm": f"127.0.0.1:{crm}"})}, port)

    codec = PageTokenCodec(secret.encode())
    deep_token = codec.encode(ds.big_org, codec.fingerprint("messages", data["list_conversation"]), data["deep"])
    list_first = pb.ListMessagesRequest(conversation_id=data["list_conversation"], page_size=50)
    list_deep = pb.ListMessagesRequest(conversation_id=data["list_conversation"], page_size=50, page_token=deep_token)
    duplicate = pb.IngestInboundMessageRequest(channel=1, from_phone=LIST_PHONE, content="once more",
                                               external_message_id="bench-dup")
    if not data["duplicate_ready"]:  # the first delivery of the duplicate id
        import grpc

        with grpc.insecure_channel(f"127.0.0.1:{messaging}") as channel:
            channel.unary_unary("/soulkg.messaging.v1.MessageService/IngestInboundMessage")(
                duplicate.SerializeToString(), metadata=[("authorization", f"Bearer {webhook}")], timeout=10)
    client_id = asyncio.run(_client_id(ds.urls.admin, ds.big_org, LIST_PHONE))
    from soulkg.crm.v1 import crm_pb2

    conversations = asyncio.run(_worker_conversations(ds.urls.admin, ds.big_org, concurrency))

    def grpc_spec(port: int, method: str, kind: str = "fixed", token: str = webhook, **extra) -> dict:
        return {"via": "grpc", "target": f"127.0.0.1:{port}", "method": method, "kind": kind, "token": token,
                "concurrency": concurrency, **timing, **extra}

    def sql_spec(kind: str) -> dict:
        return {"via": "sql", "kind": kind, "dsn": ds.urls.service("messaging"), "org": str(ds.big_org),
                "conversations": conversations, "concurrency": concurrency, **timing}

    ingest = "/soulkg.messaging.v1.MessageService/IngestInboundMessage"
    list_method = "/soulkg.messaging.v1.MessageService/ListMessages"
    measure: dict[str, dict] = {}

    def step(name: str, spec: dict) -> None:
        measure[name] = result = _measure(spec, env)
        print(f"  {name:<38} {result['rps']:>9.0f} req/s  p50 {result['p50_ms']:7.2f} ms  "
              f"p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}", flush=True)

    step("IngestInboundMessage, new id", grpc_spec(messaging, ingest, "ingest_new"))
    step("crm GetOrCreateClientByPhone", grpc_spec(crm, "/soulkg.crm.v1.ClientService/GetOrCreateClientByPhone",
                                                   "get_or_create"))
    step("ingestion SQL via asyncpg", sql_spec("sql_new"))
    step("IngestInboundMessage, duplicate id", grpc_spec(messaging, ingest,
                                                         request_hex=duplicate.SerializeToString().hex()))
    step("crm GetClient", grpc_spec(crm, "/soulkg.crm.v1.ClientService/GetClient", request_hex=crm_pb2.GetClientRequest(
        id=str(client_id)).SerializeToString().hex()))
    step("duplicate check SQL via asyncpg", sql_spec("sql_duplicate"))
    step("ListMessages first page", grpc_spec(messaging, list_method, token=admin,
                                              request_hex=list_first.SerializeToString().hex()))
    step("ListMessages page at 50,000", grpc_spec(messaging, list_method, token=admin,
                                                  request_hex=list_deep.SerializeToString().hex()))
    step("ListMessages SQL first page", {"via": "sql_list", **sql_spec("sql_list"),
                                         "conversation": data["list_conversation"]})
    fanout = _measure({"via": "fanout", "target": f"127.0.0.1:{messaging}", "token": admin,
                       "dsn": ds.urls.service("messaging"), "org": str(ds.big_org), "conversation": data["fanout_conversation"],
                       "messages": 40 if timing["seconds"] < 2 else 200, "gap": 0.02}, env)
    for name, key in ((f"StreamEvents fan-out, {STREAMS} streams", "streams"), ("LISTEN, a bare connection", "listen")):
        measure[name] = result = fanout[key]
        print(f"  {name:<38} {result['rps']:>9.0f} ev/s   p50 {result['p50_ms']:7.2f} ms  "
              f"p99 {result['p99_ms']:7.2f} ms  missing {result['errors']}", flush=True)
    return measure


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


def rows(measure: dict) -> list[dict]:
    """bench/run.py's table rows for these workloads."""
    table = []

    def row(workload, ceiling, metric, goal, compare):
        w, c = measure[workload], measure[ceiling]
        ratio = w[metric] / c[metric] if c[metric] else float("nan")
        table.append({"workload": workload, "rps": w["rps"], "p50_ms": w["p50_ms"], "p99_ms": w["p99_ms"],
                      "ceiling": ceiling, "ceiling_rps": c["rps"], "ceiling_p50_ms": c["p50_ms"],
                      "ratio": ratio, "ratio_of": metric, "goal": goal, "met": compare(ratio)})

    row("IngestInboundMessage, new id", "ingestion SQL via asyncpg", "rps", "(write path + a crm call)",
        lambda r: None)
    row("IngestInboundMessage, new id", "crm GetOrCreateClientByPhone", "rps", "(its crm call)", lambda r: None)
    row("IngestInboundMessage, duplicate id", "crm GetClient", "rps", "(its crm call)", lambda r: None)
    row("IngestInboundMessage, duplicate id", "duplicate check SQL via asyncpg", "rps", "(database path)",
        lambda r: None)
    row("ListMessages page at 50,000", "ListMessages first page", "p50_ms", "<= 1.3 (latency)", lambda r: r <= 1.3)
    row("ListMessages first page", "ListMessages SQL first page", "rps", "(database path)", lambda r: None)
    row(f"StreamEvents fan-out, {STREAMS} streams", "LISTEN, a bare connection", "p50_ms",
        "(latency; LISTEN is the floor)", lambda r: None)
    return table


def print_table(table: list[dict]) -> None:
    header = (f"{'workload':<38} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  {'vs ceiling':<34} {'ceiling':>9} "
              f"{'ratio':>6}  goal")
    print("\n" + header + "\n" + "-" * len(header))
    for r in table:
        figure = f"{r['ceiling_rps']:.0f}/s" if r["ratio_of"] == "rps" else f"{r['ceiling_p50_ms']:.2f}ms"
        met = {True: "ok", False: "MISSED", None: ""}[r["met"]]
        print(f"{r['workload']:<38} {r['rps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}  {r['ceiling']:<34} "
              f"{figure:>9} {r['ratio']:>6.2f}  {r['goal']} {met}")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "load":
        print(json.dumps(_load(json.loads(sys.argv[2]))))
        return 0
    from bench import dataset
    from bench.run import DATA, ENV, RESULTS, Servers
    from libs.tenancy.tokens import generate_key_pair

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    timing = {"warmup": 0.5, "rounds": 3, "seconds": 1.0} if args.quick else {"warmup": 1.0, "rounds": 3, "seconds": 3.0}
    DATA.mkdir(parents=True, exist_ok=True)
    ds = dataset.prepare(DATA)
    keys = DATA / "keys"
    if not (keys / "current").exists():
        generate_key_pair(keys)
    servers = Servers()
    try:
        print(f"messaging workloads (closed loop, {args.concurrency} in flight, median of {timing['rounds']} rounds):",
              flush=True)
        measure = run(ds, keys, servers, timing, args.concurrency, ENV)
    finally:
        servers.stop()
        ds.server.stop()
    table = rows(measure)
    print_table(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "messaging.json").write_text(json.dumps({
        "date": datetime.now().isoformat(timespec="seconds"), "cores": os.cpu_count(), "timing": timing,
        "concurrency": args.concurrency, "workloads": measure, "table": table}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
