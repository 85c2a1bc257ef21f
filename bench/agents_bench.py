"""agents' workloads for `make bench`, each next to the ceiling it cannot beat.

    python -m bench.run --suite agents        only these

Workloads (the issue's Benchmark section), against the benchmark's data set (bench/dataset.py:
the big organization's 100,000 clients) with agents as a separate process calling the run's
crm, called with the AI agent's `agents` service token (the caller of the hot path):

- ResolvePrompt, cached: a client already assigned in the running QUALIFICATION experiment,
  whose plan is in the server's cache (a fixed request: h2load). Ceiling: the same statement
  through asyncpg as the service runs it (single_read: the organization setting and the
  revision-and-assignment read in one statement, one round trip).
  Second ceiling: crm's GetClient with the same token (crm's "GetClient, agents service
  token": the same server shape, interceptor and one single_read statement): ResolvePrompt
  should cost what it costs. And what the cache saves, in SQL: a transaction reading the plan
  again (the live experiment with its variants, the default variant and the active
  configuration), as a call without the cache would.
- ResolvePrompt, first assignment: every call a client never resolved, in a running
  COMMUNICATION experiment: the assignment insert, crm's UpdateClient (the mirror) and the
  mirror's mark. Ceiling: the same three transactions through asyncpg (agents' role, crm's
  role, agents' role), with no gRPC between them.
- GetExperimentResults over the QUALIFICATION experiment's 100,000 assigned clients (about
  11,000 of them sold after their assignment), one caller at a time (a latency figure), as
  the organization's admin (results are for people, not for the AI's token).
  Ceiling: the same SQL through asyncpg: agents' reads, then crm's ListClientStatusChanges
  pages for the same 20 batches of 5,000 ids.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.crm_bench import GET_SERVICE
from bench.harness import Bench, Compare, Grpc, Python, Suite, Workload, at_least, at_most
from bench.loadgen import Load, bearer, begin_sql, close_channels, grpc_channels, sql_pool

RESULTS_EXPERIMENT = "bench: results over 100,000 clients"  # QUALIFICATION, every big-org client assigned
FIRST_EXPERIMENT = "bench: first assignments"  # COMMUNICATION, assignments cleared before each run
START = datetime(2025, 1, 1, tzinfo=UTC)
CONVERSION = {0: 0.10, 1: 0.12}  # per variant (by position), the share sold after its assignment
GRPC_CLIENTS = (0, 50_000)  # the first-assignment workload's clients: [offset, offset + 50,000)
SQL_CLIENTS = (50_000, 50_000)
RESOLVE = "/soulkg.agents.v1.PromptService/ResolvePrompt"
RESULTS = "/soulkg.agents.v1.ExperimentService/GetExperimentResults"

CACHED, CACHED_SQL, UNCACHED_SQL = ("ResolvePrompt, cached", "ResolvePrompt SQL via asyncpg",
                                    "ResolvePrompt SQL, plan not cached")
FIRST, FIRST_SQL = "ResolvePrompt, first assignment", "first assignment SQL via asyncpg"
RESULTS_NAME, RESULTS_SQL = "GetExperimentResults, 100,000 clients", "results SQL via asyncpg"

COMPARES = (
    Compare(CACHED, GET_SERVICE, goal=at_least(0.8), label="ResolvePrompt vs GetClient"),
    Compare(CACHED, CACHED_SQL, note="(database path)"),
    Compare(UNCACHED_SQL, CACHED_SQL, note="(what the cache saves)"),
    Compare(FIRST, FIRST_SQL, note="(3 writes + crm hop)"),
    Compare(RESULTS_NAME, RESULTS_SQL, "p50_ms", at_most(3, "(latency)"), label="GetExperimentResults vs SQL"),
)


def _services():
    from services.agents import assignment
    from services.agents import repository as agents_repo
    from services.agents import service as agents_service

    return assignment, agents_repo, agents_service


# --- the data ----------------------------------------------------------------------------------

async def _variants(conn, org: uuid.UUID, agent_type: str) -> list[uuid.UUID]:
    names = [f"bench {agent_type.lower()} {letter}" for letter in "ab"]
    found = dict(await conn.fetch("SELECT name, id FROM prompt_variants WHERE organization_id = $1 AND name = ANY($2)",
                                  org, names))
    for name in names:
        if name not in found:
            found[name] = await conn.fetchval(
                "INSERT INTO prompt_variants (organization_id, agent_type, name, prompt) "
                "VALUES ($1, $2::agent_type, $3, $4) RETURNING id", org, agent_type, name, f"Prompt of {name}.")
    return [found[name] for name in names]


async def _experiment(conn, org: uuid.UUID, agent_type: str, name: str, variants: list[uuid.UUID]) -> uuid.UUID:
    experiment = await conn.fetchval("SELECT id FROM experiments WHERE organization_id = $1 AND name = $2", org, name)
    if experiment is None:
        experiment = await conn.fetchval(
            "INSERT INTO experiments (organization_id, agent_type, name, status, start_date) "
            "VALUES ($1, $2::agent_type, $3, 'ACTIVE', $4) RETURNING id", org, agent_type, name, START)
        for index, variant in enumerate(variants):
            await conn.execute("INSERT INTO experiment_variants (organization_id, experiment_id, prompt_variant_id,"
                               " weight, is_control) VALUES ($1, $2, $3, 50, $4)", org, experiment, variant, index == 0)
    return experiment


async def prepare(admin_url: str, org: uuid.UUID) -> dict:
    """The two experiments, 100,000 assignments and their conversions (loaded once, by COPY);
    the first-assignment experiment emptied."""
    conn = await asyncpg.connect(admin_url)
    try:
        qualification = await _variants(conn, org, "QUALIFICATION")
        communication = await _variants(conn, org, "COMMUNICATION")
        results = await _experiment(conn, org, "QUALIFICATION", RESULTS_EXPERIMENT, qualification)
        first = await _experiment(conn, org, "COMMUNICATION", FIRST_EXPERIMENT, communication)
        clients = [r[0] for r in await conn.fetch("SELECT id FROM clients WHERE organization_id = $1 ORDER BY id", org)]
        have = await conn.fetchval("SELECT count(*) FROM experiment_assignments WHERE organization_id = $1 "
                                   "AND experiment_id = $2", org, results)
        if have < len(clients):
            await conn.execute("DELETE FROM experiment_assignments WHERE organization_id = $1 AND experiment_id = $2",
                               org, results)
            await conn.execute("DELETE FROM client_status_history WHERE organization_id = $1 AND reason = 'bench'", org)
            rows, history = [], []
            counts = {v: 0 for v in qualification}
            for n, client in enumerate(clients):
                variant = _services()[0].choose(results, client, [(v, 50) for v in qualification])
                assigned = START + timedelta(seconds=n)
                rows.append((org, results, client, variant, 1, assigned))
                counts[variant] += 1
                if _services()[0].unit(uuid.UUID(int=n), client) < CONVERSION[qualification.index(variant)]:
                    history.append((org, client, "NEGOTIATION", "SOLD", "HUMAN", "bench", assigned + timedelta(days=3)))
            await conn.copy_records_to_table("experiment_assignments", records=rows, columns=[
                "organization_id", "experiment_id", "client_id", "prompt_variant_id", "weights_version", "created_at"])
            await conn.copy_records_to_table("client_status_history", records=history, columns=[
                "organization_id", "client_id", "old_status", "new_status", "changed_by", "reason", "created_at"])
            await conn.execute("ANALYZE experiment_assignments")
            await conn.execute("ANALYZE client_status_history")
        await conn.execute("DELETE FROM experiment_assignments WHERE organization_id = $1 AND experiment_id = $2",
                           org, first)
        return {"results_experiment": str(results), "first_experiment": str(first), "cached_client": str(clients[0]),
                "clients": len(clients)}
    finally:
        await conn.close()


# --- the suite -------------------------------------------------------------------------------

def setup(bench: Bench) -> list[Workload]:
    from soulkg.agents.v1 import agents_pb2, enums_pb2

    ds = bench.ds
    data = asyncio.run(prepare(ds.urls.admin, ds.big_org))
    token, admin_token = bench.service_token("agents"), bench.token()
    crm = bench.service("crm")
    agents = bench.service("agents", SOULKG_SERVICE_ADDRESSES=f'{{"crm": "127.0.0.1:{crm}"}}')
    variants = asyncio.run(_first_variants(ds.urls.admin, ds.big_org, data["first_experiment"]))
    _check_results(f"127.0.0.1:{agents}", admin_token, data["results_experiment"], data["clients"])
    resolve = agents_pb2.ResolvePromptRequest(client_id=data["cached_client"],
                                              agent_type=enums_pb2.AGENT_TYPE_QUALIFICATION).SerializeToString()
    sql = {"agents_dsn": ds.urls.service("agents"), "crm_dsn": ds.urls.service("crm"), "org": bench.org,
           "admin": ds.urls.admin}

    def load(factory: str, **spec) -> Python:
        return Python(f"{__name__}:{factory}", spec)

    results = {"experiment": data["results_experiment"]}
    return [
        Workload(CACHED, Grpc(agents, RESOLVE, resolve, token)),
        Workload(CACHED_SQL, load("resolve_cached_sql", **sql, experiment=data["results_experiment"],
                                  client=data["cached_client"])),
        Workload(UNCACHED_SQL, load("resolve_uncached_sql", **sql, experiment=data["results_experiment"],
                                    client=data["cached_client"])),
        Workload(FIRST, load("resolve_first", target=f"127.0.0.1:{agents}", token=token, admin=ds.urls.admin,
                             org=bench.org, clients=GRPC_CLIENTS), server=agents),
        Workload(FIRST_SQL, load("resolve_first_sql", **sql, experiment=data["first_experiment"], variants=variants,
                                 clients=SQL_CLIENTS)),
        # One caller at a time, a call of a good part of a second: longer rounds.
        Workload(RESULTS_NAME, load("results", target=f"127.0.0.1:{agents}", token=admin_token, **results),
                 concurrency=1, seconds=2.0, server=agents),
        Workload(RESULTS_SQL, load("results_sql", **sql, **results, caller=bench.admin,
                                   roles=sorted(_policy("ExperimentService", "GetExperimentResults").roles)),
                 concurrency=1, seconds=2.0),
    ]


def _policy(service: str, method: str):
    from services.agents.policies import POLICIES

    return POLICIES[f"soulkg.agents.v1.{service}"][method]


SUITE = Suite("agents", COMPARES, setup, needs=("crm",))


# --- the load generators (bench/loadgen.py runs them in their own processes) -----------------

async def resolve_first(spec: dict) -> Load:
    """A client never resolved on every call: the assignment, crm's mirror, the mirror's mark."""
    from soulkg.agents.v1 import agents_pb2, enums_pb2

    channels = grpc_channels(spec["target"])
    metadata = bearer(spec["token"])
    fresh = iter(await _client_ids(spec["admin"], spec["org"], *spec["clients"]))
    calls = [channel.unary_unary(RESOLVE, response_deserializer=agents_pb2.ResolvePromptResponse.FromString)
             for channel in channels]

    async def call(i: int) -> None:
        request = agents_pb2.ResolvePromptRequest(client_id=next(fresh), agent_type=enums_pb2.AGENT_TYPE_COMMUNICATION)
        reply = await calls[i % len(calls)](request.SerializeToString(), metadata=metadata, timeout=10)
        if not reply.newly_assigned:
            raise RuntimeError("a first-assignment call found the client assigned")

    return Load(call=call, close=lambda: close_channels(channels))


async def results(spec: dict) -> Load:
    from soulkg.agents.v1 import agents_pb2

    channels = grpc_channels(spec["target"])
    metadata = bearer(spec["token"])
    payload = agents_pb2.GetExperimentResultsRequest(id=spec["experiment"]).SerializeToString()
    calls = [channel.unary_unary(RESULTS) for channel in channels]

    async def call(i: int) -> None:
        await calls[i % len(calls)](payload, metadata=metadata, timeout=60)

    return Load(call=call, close=lambda: close_channels(channels))


class _Pools:
    """agents' and crm's roles, and each service's transaction: the first round trip the
    service makes (bench.loadgen.begin_sql), the work, COMMIT."""

    def __init__(self, agents: asyncpg.Pool, crm: asyncpg.Pool, begin: str, org: str) -> None:
        self.agents, self.crm, self.begin, self.org = agents, crm, begin, org

    @classmethod
    async def open(cls, spec: dict) -> _Pools:
        begin = begin_sql(spec["org"], caller=spec.get("caller"), roles=tuple(spec.get("roles", ())))
        return cls(await sql_pool(spec["agents_dsn"]), await sql_pool(spec["crm_dsn"]), begin, spec["org"])

    async def transaction(self, pool: asyncpg.Pool, work):
        async with pool.acquire() as conn:
            await conn.execute(self.begin)
            result = await work(conn)
            await conn.execute("COMMIT")
            return result

    async def single(self, pool: asyncpg.Pool, sql: str, *args):
        """One statement as TenantDatabase.single_read() runs it (no caller check: the
        workloads call with the agents' service token)."""
        from libs.tenancy.database import single_statement

        statement, params = single_statement(sql, args, self.org)
        async with pool.acquire() as conn:
            return await conn.fetchrow(statement, *params)

    async def close(self) -> None:
        await self.agents.close()
        await self.crm.close()


async def resolve_cached_sql(spec: dict) -> Load:
    _, agents_repo, _ = _services()
    pools = await _Pools.open(spec)
    experiment, client = uuid.UUID(spec["experiment"]), uuid.UUID(spec["client"])

    async def call(i: int) -> None:  # the cached call's one statement (single_read)
        await pools.single(pools.agents, agents_repo._REVISION_AND_ASSIGNMENT, experiment, client)

    return Load(call=call, close=pools.close)


async def resolve_uncached_sql(spec: dict) -> Load:
    """What the cache saves: the plan read again on every call."""
    _, agents_repo, _ = _services()
    pools = await _Pools.open(spec)
    experiment, client = uuid.UUID(spec["experiment"]), uuid.UUID(spec["client"])

    async def uncached(conn):
        await conn.fetchrow(agents_repo._REVISION_AND_ASSIGNMENT, None, client)
        await conn.fetch(agents_repo._LIVE_PLAN, "QUALIFICATION")
        await conn.fetch(agents_repo._DEFAULTS_PLAN, "QUALIFICATION")
        await conn.fetchrow(agents_repo._GET_ASSIGNMENT, experiment, client)

    async def call(i: int) -> None:
        await pools.transaction(pools.agents, uncached)

    return Load(call=call, close=pools.close)


async def resolve_first_sql(spec: dict) -> Load:
    from services.crm import repository as crm_repo

    assignment, agents_repo, _ = _services()
    pools = await _Pools.open(spec)
    experiment = uuid.UUID(spec["experiment"])
    variants = [uuid.UUID(v) for v in spec["variants"]]
    fresh = iter(await _client_ids(spec["admin"], spec["org"], *spec["clients"]))
    update_client = ("UPDATE clients SET prompt_variant_id = $2::uuid WHERE organization_id = "
                     f"(SELECT app.current_org()) AND id = $1 RETURNING {crm_repo.CLIENT_COLUMNS}")

    async def call(i: int) -> None:
        client = uuid.UUID(next(fresh))
        variant = assignment.choose(experiment, client, [(v, 50) for v in variants])

        async def assign(conn):
            await conn.fetchrow(agents_repo._REVISION_AND_ASSIGNMENT, experiment, client)
            await conn.fetchrow(agents_repo._INSERT_ASSIGNMENT, experiment, client, variant, 1)

        await pools.transaction(pools.agents, assign)
        await pools.transaction(pools.crm, lambda conn: conn.fetchrow(update_client, client, variant))
        await pools.transaction(pools.agents, lambda conn: conn.execute(
            "UPDATE experiment_assignments SET mirrored_at = now() WHERE organization_id = "
            "(SELECT app.current_org()) AND experiment_id = $1 AND client_id = $2 AND mirrored_at IS NULL",
            experiment, client))

    return Load(call=call, close=pools.close)


async def results_sql(spec: dict) -> Load:
    from services.crm import repository as crm_repo

    _, agents_repo, agents_service = _services()
    batch_size, page_size = agents_service.FUNNEL_BATCH, agents_service.FUNNEL_PAGE
    pools = await _Pools.open(spec)
    experiment = uuid.UUID(spec["experiment"])

    async def reads(conn):
        await conn.fetchrow(f"SELECT {agents_repo.EXPERIMENT_COLUMNS} FROM experiments WHERE "
                            f"{agents_repo.IN_ORG} AND id = $1", experiment)
        await conn.fetch(agents_repo._EXPERIMENT_VARIANTS, [experiment])
        rows = await conn.fetch(
            f"SELECT client_id::text, prompt_variant_id, weights_version, created_at FROM experiment_assignments"
            f" WHERE {agents_repo.IN_ORG} AND experiment_id = $1", experiment)
        await conn.fetch(f"SELECT id, name FROM prompt_variants WHERE {agents_repo.IN_ORG} "
                         "AND id = ANY($1::uuid[])", [r[1] for r in rows[:2]])
        return rows

    changes_sql = (f"SELECT {crm_repo.HISTORY_COLUMNS} FROM client_status_history WHERE {crm_repo.IN_ORG} "
                   "AND client_id = ANY($1::uuid[]) AND new_status = ANY($2::client_status[]) "
                   "AND created_at >= $3")
    first_page = changes_sql + " ORDER BY client_id, created_at, id LIMIT $4"
    next_page = changes_sql + " AND (client_id, created_at, id) > ($4, $5, $6) ORDER BY client_id, created_at, id LIMIT $7"

    async def call(i: int) -> None:
        rows = await pools.transaction(pools.agents, reads)
        ids = sorted(uuid.UUID(r[0]) for r in rows)
        since = min(r[3] for r in rows)

        async def batch(chunk):
            page = await pools.transaction(pools.crm, lambda conn: conn.fetch(
                first_page, chunk, ["SOLD", "SERVICE"], since, page_size + 1))
            while len(page) > page_size:
                last = page[page_size - 1]
                page = await pools.transaction(pools.crm, lambda conn, last=last: conn.fetch(
                    next_page, chunk, ["SOLD", "SERVICE"], since, last[1], last[8], last[0], page_size + 1))

        await asyncio.gather(*(batch(ids[k:k + batch_size]) for k in range(0, len(ids), batch_size)))

    return Load(call=call, close=pools.close)


async def _client_ids(admin_url: str, org: str, offset: int, limit: int) -> list[str]:
    conn = await asyncpg.connect(admin_url)
    try:
        return [str(r[0]) for r in await conn.fetch(
            "SELECT id FROM clients WHERE organization_id = $1 ORDER BY id OFFSET $2 LIMIT $3",
            uuid.UUID(org), offset, limit)]
    finally:
        await conn.close()


async def _first_variants(admin_url: str, org: uuid.UUID, experiment: str) -> list[str]:
    conn = await asyncpg.connect(admin_url)
    try:
        return [str(r[0]) for r in await conn.fetch(
            "SELECT prompt_variant_id FROM experiment_variants WHERE organization_id = $1 AND experiment_id = $2",
            org, uuid.UUID(experiment))]
    finally:
        await conn.close()


def _check_results(target: str, token: str, experiment: str, clients: int) -> None:
    """The measured call must do the whole work: every client counted, conversions found."""
    import grpc

    from soulkg.agents.v1 import agents_pb2

    with grpc.insecure_channel(target) as channel:
        reply = channel.unary_unary("/soulkg.agents.v1.ExperimentService/GetExperimentResults",
                                    response_deserializer=agents_pb2.ExperimentResults.FromString)(
            agents_pb2.GetExperimentResultsRequest(id=experiment).SerializeToString(),
            metadata=[("authorization", f"Bearer {token}")], timeout=60)
    if reply.assigned != clients or not reply.converted:
        raise SystemExit(f"results counted {reply.assigned} clients and {reply.converted} conversions")
    print(f"agents: GetExperimentResults checked ({reply.assigned} assigned, {reply.converted} converted, "
          f"p = {reply.variants[1].comparison.p_value:.3g}, SRM p = {reply.sample_ratio.p_value:.3g})", flush=True)
