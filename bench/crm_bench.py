"""crm's workloads for `make bench`, each next to the ceiling it cannot beat.

- GetClient (a user's token: its one statement also runs `auth.assert_caller`) against the
  bare transport (bench/echo_server.py answering with as many bytes), its own SQL through
  asyncpg (the service's single_read() statement), the same server as a
  BYPASSRLS role (what row-level security costs), the same call with the `agents` service
  token (no user, so no caller check: what the check of issue 8 costs), and crm with 2
  worker processes.
- ListClients: a page 50,000 rows deep against the first page (keyset pagination: the same
  cost), the first page as a BYPASSRLS role; the keyset SQL and the OFFSET SQL, deep vs first.
- CreateClient and ChangeClientStatus against their SQL (each worker flips its own client
  between two statuses: no contention).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid

import asyncpg

from bench.harness import Bench, Compare, Grpc, Python, Suite, Workload, at_least, at_most, port_open
from bench.loadgen import Load, bearer, begin_sql, close_channels, grpc_channels, sql_pool
from services.crm import repository as repo
from services.crm.policies import POLICIES

SERVICE = "/soulkg.crm.v1.ClientService/"
DEEP_POSITION = 50_000
GET_SQL = repo._GET
OFFSET_SQL = (f"SELECT {repo.CLIENT_COLUMNS} FROM clients WHERE {repo.IN_ORG} "
              "ORDER BY created_at DESC, id DESC LIMIT 51 OFFSET $1")
KEYSET_FIRST_SQL = f"SELECT {repo.CLIENT_COLUMNS} FROM clients WHERE {repo.IN_ORG} ORDER BY created_at DESC, id DESC LIMIT 51"
KEYSET_DEEP_SQL = (f"SELECT {repo.CLIENT_COLUMNS} FROM clients WHERE {repo.IN_ORG} AND (created_at, id) < ($1, $2) "
                   "ORDER BY created_at DESC, id DESC LIMIT 51")

ECHO = "transport ceiling (echo)"
GET = "GetClient"
GET_SQL_NAME = "GetClient SQL via asyncpg"
GET_BYPASS = "GetClient, BYPASSRLS role"
GET_SERVICE = "GetClient, agents service token"
GET_TWO = "GetClient, crm with 2 workers"
LIST_FIRST, LIST_DEEP = "ListClients first page", "ListClients page at 50,000"
LIST_BYPASS = "ListClients first page, BYPASSRLS role"
KEYSET_FIRST, KEYSET_DEEP = "keyset SQL first page", "keyset SQL page at 50,000"
OFFSET_FIRST, OFFSET_DEEP = "OFFSET SQL first page", "OFFSET SQL page at 50,000"
CREATE, CREATE_SQL = "CreateClient", "CreateClient SQL via asyncpg"
CHANGE, CHANGE_SQL = "ChangeClientStatus", "ChangeClientStatus SQL via asyncpg"

COMPARES = (
    Compare(GET, ECHO, goal=at_least(0.6), label="GetClient vs echo"),
    Compare(GET, GET_SQL_NAME, note="(database path)"),
    Compare(GET, GET_BYPASS, goal=at_least(0.95), label="GetClient RLS cost"),
    Compare(GET, GET_SERVICE, note="(user's call runs auth.assert_caller)", label="caller check cost"),
    Compare(GET_TWO, GET, goal=at_least(1.6, "(needs a free core)"), label="crm 2 workers vs 1"),
    Compare(LIST_DEEP, LIST_FIRST, "p50_ms", at_most(1.3, "(latency)"), label="ListClients deep/first"),
    Compare(LIST_FIRST, LIST_BYPASS, goal=at_least(0.95), label="ListClients RLS cost"),
    Compare(KEYSET_DEEP, KEYSET_FIRST, "p50_ms", note="(latency)"),
    Compare(OFFSET_DEEP, OFFSET_FIRST, "p50_ms", note="(latency; why keyset)"),
    Compare(CREATE, CREATE_SQL, note="(write path)"),
    Compare(CHANGE, CHANGE_SQL, note="(write path)"),
)


def roles(method: str) -> list[str]:
    """The user roles crm's policy admits for a method: what the service's caller check sends."""
    return sorted(POLICIES["soulkg.crm.v1.ClientService"][method].roles)


async def _pick(admin_url: str, org: uuid.UUID, count: int):
    """Clients to read and to flip (their status set to QUALIFIED, where every flip starts),
    and the row at DEEP_POSITION of the newest-first order."""
    conn = await asyncpg.connect(admin_url)
    try:
        ids = [str(r["id"]) for r in await conn.fetch(
            "SELECT id FROM clients WHERE organization_id = $1 ORDER BY id LIMIT $2", org, count)]
        await conn.execute("UPDATE clients SET status = 'QUALIFIED' WHERE organization_id = $1 AND id = ANY($2)",
                           org, [uuid.UUID(i) for i in ids[1:]])
        deep = await conn.fetchrow(
            "SELECT id, created_at FROM clients WHERE organization_id = $1 ORDER BY created_at DESC, id DESC "
            "OFFSET $2 LIMIT 1", org, DEEP_POSITION)
        return ids, deep
    finally:
        await conn.close()


def picked(bench: Bench) -> tuple[list[str], asyncpg.Record]:
    """The clients the workloads read and flip, and the deep page's row (once per run)."""
    if "crm.picked" not in bench.shared:
        bench.shared["crm.picked"] = asyncio.run(_pick(bench.ds.urls.admin, bench.ds.big_org,
                                                       2 * bench.concurrency + 1))
    return bench.shared["crm.picked"]


def read_client(bench: Bench) -> str:
    """The client every GetClient of the run reads."""
    return picked(bench)[0][0]


def setup(bench: Bench) -> list[Workload]:
    from libs.pagination import PageTokenCodec
    from soulkg.crm.v1 import crm_pb2

    ds = bench.ds
    ids, deep = picked(bench)
    codec = PageTokenCodec(bench.page_secret.encode())
    deep_token = codec.encode(ds.big_org, codec.fingerprint("clients", "", "create_time desc"),
                              [deep["created_at"].isoformat(), str(deep["id"])])
    get = crm_pb2.GetClientRequest(id=ids[0]).SerializeToString()
    list_first = crm_pb2.ListClientsRequest(page_size=50).SerializeToString()
    list_deep = crm_pb2.ListClientsRequest(page_size=50, page_token=deep_token).SerializeToString()
    user, agents = bench.token(), bench.service_token("agents")

    crm = bench.service("crm")
    bypass = bench.service("crm", label="crm as BYPASSRLS", SOULKG_DATABASE_URL=ds.bypass_url)
    two = bench.service("crm", label="crm with 2 workers", SOULKG_WORKERS="2")
    reply_size = len(_call(crm, SERVICE + "GetClient", get, user))
    echo = bench.start("echo", ["-m", "bench.echo_server", str(reply_size), "{port}"], ready=port_open)

    def sql(sql_text: str, method: str, args=(), readonly: bool = True, single: bool = False) -> Python:
        return Python("bench.loadgen:sql_query", {"dsn": ds.urls.service("crm"), "org": bench.org, "sql": sql_text,
                                                  "args": list(args), "caller": bench.admin,
                                                  "roles": roles(method), "readonly": readonly, "single": single})

    def write(factory: str, **spec) -> Python:
        return Python(f"bench.crm_bench:{factory}", {"org": bench.org, "caller": bench.admin, **spec})

    # Each worker flips its own client, and the two workloads flip different ones.
    clients, sql_clients = ids[1:bench.concurrency + 1], ids[bench.concurrency + 1:]
    deep_args = [["ts", deep["created_at"].isoformat()], ["uuid", str(deep["id"])]]
    return [
        Workload(ECHO, Grpc(echo, "/bench.Echo/Call", get)),
        Workload(GET, Grpc(crm, SERVICE + "GetClient", get, user)),
        Workload(GET_SQL_NAME, sql(GET_SQL, "GetClient", [["uuid", ids[0]]], single=True)),
        Workload(GET_BYPASS, Grpc(bypass, SERVICE + "GetClient", get, user)),
        Workload(GET_SERVICE, Grpc(crm, SERVICE + "GetClient", get, agents)),
        Workload(GET_TWO, Grpc(two, SERVICE + "GetClient", get, user)),
        Workload(LIST_FIRST, Grpc(crm, SERVICE + "ListClients", list_first, user)),
        Workload(LIST_DEEP, Grpc(crm, SERVICE + "ListClients", list_deep, user)),
        Workload(LIST_BYPASS, Grpc(bypass, SERVICE + "ListClients", list_first, user)),
        Workload(KEYSET_FIRST, sql(KEYSET_FIRST_SQL, "ListClients")),
        Workload(KEYSET_DEEP, sql(KEYSET_DEEP_SQL, "ListClients", deep_args)),
        Workload(OFFSET_FIRST, sql(OFFSET_SQL, "ListClients", [["int", 0]])),
        Workload(OFFSET_DEEP, sql(OFFSET_SQL, "ListClients", [["int", DEEP_POSITION]])),
        Workload(CREATE, write("create_client", target=f"127.0.0.1:{crm}", token=user), server=crm),
        Workload(CREATE_SQL, write("create_client_sql", dsn=ds.urls.service("crm"))),
        Workload(CHANGE, write("change_status", target=f"127.0.0.1:{crm}", token=user, client_ids=clients), server=crm),
        Workload(CHANGE_SQL, write("change_status_sql", dsn=ds.urls.service("crm"), client_ids=sql_clients)),
    ]


def _call(port: int, method: str, request: bytes, token: str) -> bytes:
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return channel.unary_unary(method)(request, metadata=bearer(token), timeout=10)


SUITE = Suite("crm", COMPARES, setup)


# --- the write workloads, run by bench/loadgen.py ---------------------------------------------

def _phones(prefix: str):
    """New phone numbers, unique across the generator processes of one run (earlier runs'
    clients are deleted by bench/dataset.py)."""
    counter = itertools.count()
    return lambda: f"{prefix}{os.getpid() % 90 + 10}{next(counter):07d}"


async def create_client(spec: dict) -> Load:
    from soulkg.crm.v1 import crm_pb2

    channels = grpc_channels(spec["target"])
    calls = [channel.unary_unary(SERVICE + "CreateClient") for channel in channels]
    metadata, phone = bearer(spec["token"]), _phones("+9967")

    async def call(i: int) -> None:
        request = crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone=phone(), first_name="Load"))
        await calls[i % len(calls)](request.SerializeToString(), metadata=metadata, timeout=10)

    return Load(call=call, close=lambda: close_channels(channels))


async def change_status(spec: dict) -> Load:
    from soulkg.crm.v1 import crm_pb2

    channels = grpc_channels(spec["target"])
    calls = [channel.unary_unary(SERVICE + "ChangeClientStatus") for channel in channels]
    metadata = bearer(spec["token"])
    flips = [itertools.cycle([3, 2]) for _ in spec["client_ids"]]  # from QUALIFIED: WARMED, QUALIFIED, ...

    async def call(i: int) -> None:
        request = crm_pb2.ChangeClientStatusRequest(id=spec["client_ids"][i], status=next(flips[i]))
        await calls[i % len(calls)](request.SerializeToString(), metadata=metadata, timeout=10)

    return Load(call=call, close=lambda: close_channels(channels))


async def create_client_sql(spec: dict) -> Load:
    """CreateClient's transaction (services/crm/service.py), with the repository's statements."""
    from libs.persistence import insert_sql

    pool = await sql_pool(spec["dsn"])
    begin = begin_sql(spec["org"], caller=spec["caller"], roles=tuple(roles("CreateClient")))
    phone = _phones("+9968")

    async def call(i: int) -> None:
        sql, args = insert_sql("clients", {"phone": phone(), "first_name": "Load"}, repo.WRITABLE,
                               returning=repo.CLIENT_COLUMNS)
        async with pool.acquire() as conn:
            await conn.execute(begin)
            row = await conn.fetchrow(sql, *args)
            await conn.execute(repo._INSERT_HISTORY, row["id"], None, row["status"], "HUMAN",
                               uuid.UUID(spec["caller"]), None, "created")
            await conn.execute("COMMIT")

    return Load(call=call, close=pool.close)


async def change_status_sql(spec: dict) -> Load:
    """ChangeClientStatus's transaction: the client locked, its status set, the history row."""
    pool = await sql_pool(spec["dsn"])
    begin = begin_sql(spec["org"], caller=spec["caller"], roles=tuple(roles("ChangeClientStatus")))
    flips = [itertools.cycle(["WARMED", "QUALIFIED"]) for _ in spec["client_ids"]]
    client_ids = [uuid.UUID(c) for c in spec["client_ids"]]
    caller = uuid.UUID(spec["caller"])

    async def call(i: int) -> None:
        new = next(flips[i])
        async with pool.acquire() as conn:
            await conn.execute(begin)
            old = await conn.fetchrow(repo._GET_FOR_UPDATE, client_ids[i])
            await conn.fetchrow(repo._SET_STATUS, client_ids[i], new)
            await conn.execute(repo._INSERT_HISTORY, client_ids[i], old["status"], new, "HUMAN", caller, None, None)
            await conn.execute("COMMIT")

    return Load(call=call, close=pool.close)
