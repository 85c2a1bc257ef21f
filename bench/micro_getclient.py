"""GetClient's Python work layer by layer, in one process, without gRPC's transport: CPU time
of this process per call (the client side of the database included, PostgreSQL's own work not).

    python -m bench.micro_getclient [calls]

Each row adds one layer to the one above, with 16 calls in flight like the benchmark:
  raw asyncpg (acquire; BEGIN + settings + caller check; SELECT; COMMIT) → TenantDatabase's
  unit of work + the repository's entity → the use case → the servicer (protobuf reply) → the
  interceptor's wrapped handler around it; then the same with TenantDatabase.single_read().
Microseconds per call, median of 5 repetitions.
"""

from __future__ import annotations

import asyncio
import sys
import time
import warnings
from pathlib import Path
from statistics import median

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

import asyncpg  # noqa: E402
import grpc  # noqa: E402

from bench import dataset  # noqa: E402
from bench.loadgen import begin_sql  # noqa: E402
from bench.micro_interceptor import FakeContext  # noqa: E402
from libs.authz import ANY_USER  # noqa: E402
from libs.pagination import PageTokenCodec  # noqa: E402
from libs.persistence import KeysetPager, found  # noqa: E402
from libs.tenancy import context as tenancy_context  # noqa: E402
from libs.tenancy.context import PRINCIPAL_USER, Principal  # noqa: E402
from libs.tenancy.database import TenantDatabase  # noqa: E402
from libs.tenancy.interceptors import TenancyInterceptor  # noqa: E402
from services.crm import repository as repo  # noqa: E402
from services.crm.service import ClientsService  # noqa: E402
from services.crm.servicer import ClientServicer, client_message  # noqa: E402
from soulkg.crm.v1 import crm_pb2  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".data" / "bench"
METHOD = "/soulkg.crm.v1.ClientService/GetClient"
IN_FLIGHT = 16


async def _cpu_per_call(n: int, call) -> float:
    """CPU microseconds of this process per call, IN_FLIGHT calls at a time, each in its own task."""
    async def worker(count: int) -> None:
        for _ in range(count):
            await asyncio.create_task(call())

    started = time.process_time()
    await asyncio.gather(*(worker(n // IN_FLIGHT) for _ in range(IN_FLIGHT)))
    return (time.process_time() - started) / (n // IN_FLIGHT * IN_FLIGHT) * 1e6


async def main(n: int, ds) -> None:
    try:
        db = await TenantDatabase.connect(ds.urls.service("crm"), min_size=10, max_size=10)
        admin = await asyncpg.connect(ds.urls.admin)
        client_id = await admin.fetchval("SELECT id FROM clients WHERE organization_id = $1 LIMIT 1", ds.big_org)
        await admin.close()
        principal = Principal(ds.big_org, str(ds.big_org_admin), PRINCIPAL_USER, "ADMIN", "token", time.time() + 3600)
        tenancy_context.set_principal(principal)
        tenancy_context.set_admitted_roles(ANY_USER.roles)
        service = ClientsService(db, KeysetPager(PageTokenCodec(b"k" * 32)))
        servicer = ClientServicer(service)
        request = crm_pb2.GetClientRequest(id=str(client_id))
        begin = begin_sql(str(ds.big_org), caller=str(ds.big_org_admin), roles=tuple(sorted(ANY_USER.roles)),
                          readonly=True)

        class Verifier:
            def verify(self, token):
                return principal

        interceptor = TenancyInterceptor(Verifier(), {METHOD: ANY_USER})

        async def behavior(req, ctx):
            return await servicer.GetClient(req, ctx)

        wrapped = interceptor._wrap(METHOD, grpc.unary_unary_rpc_method_handler(behavior)).unary_unary
        context = FakeContext((("authorization", "Bearer token"),))

        async def raw():
            async with db.pool.acquire() as conn:
                await conn.execute(begin)
                await conn.fetchrow(repo._GET, client_id)
                await conn.execute("COMMIT")

        async def unit_of_work():
            async with db.transaction(readonly=True) as conn:
                return await repo.get_client(conn, client_id)

        async def use_case():
            return await service.get(client_id)

        async def servicer_call():
            return await servicer.GetClient(request, context)

        async def through_interceptor():
            return await wrapped(request, context)

        async def single_read_use_case():
            async with db.single_read() as conn:
                return found(await repo.get_client(conn, client_id), "client")

        async def single_read_servicer():
            async with db.single_read() as conn:
                client = found(await repo.get_client(conn, client_id), "client")
            return client_message(client)

        rows = {
            "raw asyncpg: 3 round trips": raw,
            "+ unit of work + repository entity": unit_of_work,
            "+ use case (ClientsService.get)": use_case,
            "+ servicer (protobuf reply)": servicer_call,
            "+ interceptor's wrapped handler": through_interceptor,
            "single_read: unit of work + repository": single_read_use_case,
            "single_read + protobuf reply": single_read_servicer,
        }
        results: dict[str, list[float]] = {name: [] for name in rows}
        for call in rows.values():  # warm-up
            await _cpu_per_call(IN_FLIGHT * 20, call)
        for _ in range(5):
            for name, call in rows.items():
                results[name].append(await _cpu_per_call(n, call))
        width = max(map(len, rows))
        for name, values in results.items():
            print(f"{name:<{width}} {median(values):7.1f} us CPU per call (this process)")
        print(f"(a reply is {client_message(await service.get(client_id)).ByteSize()} bytes)")
        await db.close()
    finally:
        ds.server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4000, dataset.prepare(DATA)))
