"""The Python load generator: one process per workload, kept for all the rounds of its group.

    python -m bench.loadgen '{"factory": "module:function", "spec": {...}, "concurrency": 16}'

The process builds the workload once (`factory(spec)`: channels, pools, request bodies), says
`{"ready": true}` on stdout, then answers each line it reads on stdin,
`{"warmup": seconds, "seconds": seconds}`, with one round's result on one line. The process
stays between rounds, so a round costs no interpreter start and no new connections, and an
idle generator takes no CPU while the other workloads of its group run.

A round is a closed loop: `concurrency` workers each send a request, wait for its answer and
send the next, for `warmup` seconds unmeasured and `seconds` measured. A result counts every
answered request in the measured window (requests/s, p50 and p99 latency) and every failure of
the round by its code: the gRPC status (with the `google.rpc.ErrorInfo` reason when the
service sent one, e.g. `ABORTED:ETAG_MISMATCH`) or the exception's class (asyncpg's
`SerializationError`, ...). The first failure of each code is written to stderr, which
bench/run.py sends to the run's log directory.

A factory returns a `Load`: `call(worker)` for a closed loop, or `round(concurrency, warmup,
seconds)` for a workload that measures itself (messaging's stream fan-out, the login flood),
and `close()`.

The factories here are the generic ones (a fixed gRPC request; a SQL statement in the
service's own transaction); each service's own are in bench/<service>_bench.py.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import grpc
from grpc import aio

CHANNELS = 4  # connections per gRPC workload, so that a server with several workers gets several


@dataclass
class Load:
    call: Callable[[int], Awaitable] | None = None
    round: Callable[[int, float, float], Awaitable[dict]] | None = None  # (concurrency, warmup, seconds)
    close: Callable[[], Awaitable] | None = None


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def error_code(exc: BaseException) -> str:
    """`UNAVAILABLE`, `ABORTED:ETAG_MISMATCH`, `SerializationError`, ..."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        code = exc.code().name
        reason = _error_reason(exc)
        return f"{code}:{reason}" if reason else code
    return _error_name(exc)


def _error_reason(exc) -> str | None:
    try:
        from google.rpc import error_details_pb2, status_pb2

        for key, value in exc.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                        info = error_details_pb2.ErrorInfo()
                        detail.Unpack(info)
                        return info.reason
    except Exception:  # noqa: BLE001 - a reason is a nicety; the code is enough
        return None
    return None


class Errors:
    """Failures by code; the first of each code goes to stderr (the run's log file)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, exc: BaseException) -> None:
        code = error_code(exc)
        if code not in self.counts:
            print(f"first {code}: {''.join(traceback.format_exception_only(exc)).strip()}", file=sys.stderr,
                  flush=True)
        self.counts[code] += 1


async def closed_loop(call: Callable[[int], Awaitable], concurrency: int, warmup: float, seconds: float) -> dict:
    """One round: `concurrency` workers calling `call(worker)` for warmup + seconds."""
    errors = Errors()
    window: list[list[float] | None] = [None]  # the measured latencies; None during the warm-up

    async def worker(index: int, stop_at: float) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                await call(index)
            except Exception as exc:  # noqa: BLE001 - counted by code, never fatal to the round
                errors.add(exc)
                await asyncio.sleep(0)  # a failing call must not starve the other workers
                continue
            if window[0] is not None:
                window[0].append(time.perf_counter() - started)

    stop_at = time.perf_counter() + warmup + seconds
    tasks = [asyncio.create_task(worker(i, stop_at)) for i in range(concurrency)]
    await asyncio.sleep(warmup)
    window[0] = measured = []
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    window[0] = None
    await asyncio.gather(*tasks)
    values = sorted(measured)
    return {"rps": len(values) / elapsed, "p50_ms": percentile(values, 0.50) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000, "calls": len(values), "errors": dict(errors.counts)}


# --- generic workloads ------------------------------------------------------------------------

def grpc_channels(target: str) -> list[aio.Channel]:
    return [aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(CHANNELS)]


def bearer(token: str | None) -> tuple | None:
    return (("authorization", f"Bearer {token}"),) if token else None


async def close_channels(channels) -> None:
    for channel in channels:
        await channel.close()


async def grpc_fixed(spec: dict) -> Load:
    """The same pre-encoded request on a raw unary call (no protobuf work in the generator):
    what h2load does, for machines without h2load."""
    channels = grpc_channels(spec["target"])
    calls = [channel.unary_unary(spec["method"]) for channel in channels]
    payload = bytes.fromhex(spec["request_hex"])
    metadata = bearer(spec.get("token"))

    async def call(i: int) -> None:
        await calls[i % CHANNELS](payload, metadata=metadata, timeout=10)

    return Load(call=call, close=lambda: close_channels(channels))


class HttpStatusError(Exception):
    """An HTTP answer other than 200: counted as `HTTP <status>`."""

    def __init__(self, status: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


async def http_get(spec: dict) -> Load:
    """One pre-encoded HTTP/1.1 GET per call on raw keep-alive sockets (one per worker),
    answers read by Content-Length: no HTTP library on the hot path (what h2load --h1 does)."""
    import re

    request = (f"GET {spec['path']} HTTP/1.1\r\nhost: 127.0.0.1:{spec['port']}\r\naccept: application/json\r\n"
               + (f"authorization: Bearer {spec['token']}\r\n" if spec.get("token") else "") + "\r\n").encode()
    connections: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def call(i: int) -> None:
        if i not in connections:
            connections[i] = await asyncio.open_connection("127.0.0.1", spec["port"])
        reader, writer = connections[i]
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
        await reader.readexactly(length)
        status = head.split(b" ", 2)[1].decode()
        if status != "200":
            raise HttpStatusError(status)

    async def close() -> None:
        for _, writer in connections.values():
            writer.close()

    return Load(call=call, close=close)


def _error_name(exc: BaseException) -> str:
    return f"HTTP {exc.status}" if isinstance(exc, HttpStatusError) else type(exc).__name__


async def _no_reset(conn: asyncpg.Connection) -> None:
    """As libs/tenancy/database.py: sessions carry no state; only an open transaction is ended."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def sql_pool(dsn: str, size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=size, max_size=size, reset=_no_reset)


def begin_sql(org: str, *, caller: str | None = None, roles: tuple[str, ...] = (), readonly: bool = False) -> str:
    """The service's first round trip, from the service's own code: BEGIN, the organization
    and the statement timeout, and for a user's call the caller check."""
    from libs.tenancy.database import _begin_sql

    return _begin_sql(uuid.UUID(org), 10_000, readonly, uuid.UUID(caller) if caller else None, frozenset(roles))


def _typed(tag: str, value):
    """JSON has no timestamps or UUIDs: a spec tags each SQL argument with its type."""
    from datetime import datetime

    return {"ts": datetime.fromisoformat, "uuid": uuid.UUID, "int": int, "str": str}[tag](value)


async def sql_query(spec: dict) -> Load:
    """One statement as the service runs it. spec: dsn, org, sql, args [[type, value]], and
    caller + roles when the service's call is a user's (it then runs the caller check too).
    In the service's transaction: the first round trip (begin_sql), the statement, COMMIT; with
    "single": true, as TenantDatabase.single_read() runs it: one statement, one round trip."""
    pool = await sql_pool(spec["dsn"])
    caller, roles = spec.get("caller"), sorted(spec.get("roles", ()))
    sql, args = spec["sql"], [_typed(tag, value) for tag, value in spec.get("args", [])]
    if spec.get("single"):
        from libs.tenancy.database import single_statement

        single, params = single_statement(sql, args, spec["org"], uuid.UUID(caller) if caller else None, roles)

        async def call(i: int) -> None:
            async with pool.acquire() as conn:
                await conn.fetch(single, *params)

        return Load(call=call, close=pool.close)

    begin = begin_sql(spec["org"], caller=caller, roles=tuple(roles), readonly=spec.get("readonly", False))

    async def call(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.execute(begin)
            await conn.fetch(sql, *args)
            await conn.execute("COMMIT")

    return Load(call=call, close=pool.close)


# --- the process ------------------------------------------------------------------------------

def _factory(path: str) -> Callable[[dict], Awaitable[Load]]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


async def _serve(config: dict) -> None:
    load = await _factory(config["factory"])(config["spec"])
    concurrency = config["concurrency"]
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            if load.round is not None:
                result = await load.round(concurrency, command["warmup"], command["seconds"])
            else:
                result = await closed_loop(load.call, concurrency, command["warmup"], command["seconds"])
            print(json.dumps(result), flush=True)
    finally:
        if load.close is not None:
            await load.close()


def main() -> None:
    asyncio.run(_serve(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
