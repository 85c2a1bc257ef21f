"""The load generator: a separate process that drives one workload in a closed loop.

    python -m bench.loadgen '<json spec>'   → prints one JSON result line

A fixed number of coroutines each send a request, wait for the answer and send the next
(closed loop). After a warm-up, it runs `rounds` rounds and reports, per round, requests/s
and p50/p99 latency; bench/run.py takes the medians. gRPC requests are pre-encoded bytes on
raw unary calls (no protobuf work in the client); several channels, so that a server with
several worker processes gets several connections.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import os
import sys
import time
import uuid

import asyncpg
import grpc
from grpc import aio

CHANNELS = 4


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def _closed_loop(call, concurrency: int, warmup: float, rounds: int, seconds: float) -> list[dict]:
    """Run `call(worker_index)` from `concurrency` workers; measure `rounds` windows."""
    latencies: list[list[float]] = []
    errors = [0]
    window = [None]  # the list collecting latencies of the current round, or None (warm-up)

    async def worker(index: int, stop_at: float):
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                await call(index)
            except (grpc.RpcError, asyncpg.PostgresError):
                errors[0] += 1
                continue
            if window[0] is not None:
                window[0].append(time.perf_counter() - started)

    total = warmup + rounds * seconds
    stop_at = time.perf_counter() + total
    tasks = [asyncio.create_task(worker(i, stop_at)) for i in range(concurrency)]
    await asyncio.sleep(warmup)
    results = []
    for _ in range(rounds):
        window[0] = current = []
        round_start = time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - round_start
        window[0] = None
        values = sorted(current)
        latencies.append(values)
        results.append({"rps": len(values) / elapsed, "p50_ms": _percentile(values, 0.50) * 1000,
                        "p99_ms": _percentile(values, 0.99) * 1000})
    await asyncio.gather(*tasks)
    results.append({"errors": errors[0]})
    return results


async def _grpc_workload(spec: dict):
    channels = [aio.insecure_channel(spec["target"], options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(CHANNELS)]
    metadata = (("authorization", f"Bearer {spec['token']}"),) if spec.get("token") else None
    calls = [ch.unary_unary(spec["method"]) for ch in channels]
    kind = spec["kind"]
    if kind == "fixed":
        payload = bytes.fromhex(spec["request_hex"])

        async def call(i):
            await calls[i % CHANNELS](payload, metadata=metadata, timeout=10)
    elif kind == "create_client":
        from soulkg.crm.v1 import crm_pb2

        counter = itertools.count()
        prefix = f"+9967{os.getpid() % 90 + 10}"

        async def call(i):
            phone = f"{prefix}{next(counter):07d}"[:16]
            request = crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone=phone, first_name="Load"))
            await calls[i % CHANNELS](request.SerializeToString(), metadata=metadata, timeout=10)
    elif kind == "change_status":
        from soulkg.crm.v1 import crm_pb2

        # Each worker owns one client and flips it between two statuses: no contention.
        flips = [itertools.cycle([3, 2]) for _ in spec["client_ids"]]

        async def call(i):
            request = crm_pb2.ChangeClientStatusRequest(id=spec["client_ids"][i], status=next(flips[i]))
            await calls[i % CHANNELS](request.SerializeToString(), metadata=metadata, timeout=10)
    else:
        raise SystemExit(f"unknown grpc workload {kind}")
    try:
        return await _closed_loop(call, spec["concurrency"], spec["warmup"], spec["rounds"], spec["seconds"])
    finally:
        for channel in channels:
            await channel.close()


def _typed(tag: str, value):
    """JSON has no timestamps or UUIDs: the spec tags each SQL argument with its type."""
    from datetime import datetime

    return {"ts": datetime.fromisoformat, "uuid": uuid.UUID, "int": int, "str": str}[tag](value)


async def _sql_workload(spec: dict):
    """The same transaction the service runs (set_config + the statement), through asyncpg."""
    async def no_reset(conn):  # as libs/tenancy/database.py: nothing session-level to reset
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")

    pool = await asyncpg.create_pool(spec["dsn"], min_size=spec["pool"], max_size=spec["pool"], reset=no_reset)
    org = spec["org"]
    # The service's unit of work, at its leanest: BEGIN + settings in one round trip.
    begin = (f"BEGIN; SELECT set_config('app.current_organization_id', '{uuid.UUID(org)}', true), "
             "set_config('statement_timeout', '10000ms', true)")
    kind = spec["kind"]
    args = [_typed(tag, value) for tag, value in spec.get("args", [])]
    counter = itertools.count()
    flips = [itertools.cycle(["WARMED", "QUALIFIED"]) for _ in spec.get("client_ids", [None] * spec["concurrency"])]
    prefix = f"+9968{os.getpid() % 90 + 10}"

    async def call(i):
        async with pool.acquire() as conn:
            await conn.execute(begin)
            await statement(conn, i)
            await conn.execute("COMMIT")

    async def statement(conn, i):
        if kind == "query":
            await conn.fetch(spec["sql"], *args)
        elif kind == "create_client":
            row = await conn.fetchrow(
                "INSERT INTO clients (organization_id, phone, first_name) VALUES ($1, $2, $3) "
                "RETURNING id, status::text", uuid.UUID(org), f"{prefix}{next(counter):07d}"[:16], "Load")
            await conn.execute(
                "INSERT INTO client_status_history (organization_id, client_id, new_status, changed_by, reason) "
                "VALUES ($1, $2, $3::client_status, 'SYSTEM', 'created')", uuid.UUID(org), row[0], row[1])
        elif kind == "change_status":
            client_id = uuid.UUID(spec["client_ids"][i])
            old = await conn.fetchval("SELECT status::text FROM clients WHERE organization_id = "
                                      "(SELECT app.current_org()) AND id = $1 FOR UPDATE", client_id)
            new = next(flips[i])
            await conn.execute("UPDATE clients SET status = $2::client_status WHERE organization_id = "
                               "(SELECT app.current_org()) AND id = $1", client_id, new)
            await conn.execute(
                "INSERT INTO client_status_history (organization_id, client_id, old_status, new_status, "
                "changed_by, created_at) VALUES ($1, $2, $3::client_status, $4::client_status, 'HUMAN', "
                "clock_timestamp())", uuid.UUID(org), client_id, old, new)


    try:
        return await _closed_loop(call, spec["concurrency"], spec["warmup"], spec["rounds"], spec["seconds"])
    finally:
        await pool.close()


def main() -> None:
    spec = json.loads(sys.argv[1])
    runner = _grpc_workload if spec["via"] == "grpc" else _sql_workload
    if "module" in spec:  # a workload kept with its service's bench code (bench/catalog_bench.py)
        runner = getattr(importlib.import_module(spec["module"]), f"{spec['via']}_workload")
    print(json.dumps(asyncio.run(runner(spec))))


if __name__ == "__main__":
    main()
