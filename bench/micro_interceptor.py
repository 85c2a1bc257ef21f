"""What the tenancy interceptor costs per call, without a network or a database.

    python -m bench.micro_interceptor [calls]

Each call runs in its own asyncio task with a copied context, as grpc.aio runs an RPC, with a
stand-in for grpc's ServicerContext (metadata, deadline). Rows: the whole per-call path
(`intercept_service` + the wrapped handler around a handler that does nothing) next to the
bare handler, then its parts one by one. Microseconds per call, median of 5 repetitions.
"""

from __future__ import annotations

import asyncio
import contextvars
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median

import grpc
import structlog

from libs.authz import ANY_USER
from libs.tenancy import context as tenancy_context
from libs.tenancy.interceptors import TenancyInterceptor, _request_id, bearer_token
from libs.tenancy.tokens import TokenVerifier, generate_key_pair, load_public_keys, load_signer

METHOD = "/soulkg.crm.v1.ClientService/GetClient"


class FakeContext:
    """What the interceptor asks of grpc's context."""

    def __init__(self, metadata: tuple) -> None:
        self._metadata = metadata

    def invocation_metadata(self):
        return self._metadata

    def time_remaining(self):
        return 9.5


class Details:
    method = METHOD
    invocation_metadata = ()


def _setup():
    keys = Path(tempfile.mkdtemp())
    generate_key_pair(keys)
    token, _ = load_signer(keys).issue(organization_id=uuid.uuid4(), subject=str(uuid.uuid4()), role="ADMIN",
                                       ttl_seconds=3600)
    verifier = TokenVerifier(load_public_keys(keys))
    verifier.verify(token)  # cached from now on, as on a server
    metadata = (("authorization", f"Bearer {token}"), ("user-agent", "grpc-python/1.x"),
                ("content-type", "application/grpc"))
    return token, verifier, metadata


async def _per_task(n: int, body) -> float:
    """Microseconds per call of `body()` run as its own task (a copied context each)."""
    started = time.perf_counter()
    for _ in range(n):
        await asyncio.create_task(body())
    return (time.perf_counter() - started) / n * 1e6


def _per_call(n: int, body) -> float:
    """Microseconds per call of a plain function, each in a fresh copied context."""
    started = time.perf_counter()
    for _ in range(n):
        contextvars.copy_context().run(body)
    return (time.perf_counter() - started) / n * 1e6


async def main(n: int) -> None:
    token, verifier, metadata = _setup()
    interceptor = TenancyInterceptor(verifier, {METHOD: ANY_USER})

    async def behavior(request, context):
        return b""

    handler = grpc.unary_unary_rpc_method_handler(behavior)

    async def continuation(details):
        return handler

    context = FakeContext(metadata)
    wrapped = (await interceptor.intercept_service(continuation, Details())).unary_unary

    async def bare():
        await behavior(b"", context)

    async def full():
        h = await interceptor.intercept_service(continuation, Details())
        await h.unary_unary(b"", context)

    async def wrapped_only():
        await wrapped(b"", context)

    rows: dict[str, list[float]] = {}
    for _ in range(5):
        for name, value in (
            ("task with the bare handler (baseline)", await _per_task(n, bare)),
            ("task with intercept_service + wrapped handler", await _per_task(n, full)),
            ("task with the wrapped handler only", await _per_task(n, wrapped_only)),
            ("  context.invocation_metadata() (stand-in)", _per_call(n, context.invocation_metadata)),
            ("  bearer_token(metadata)", _per_call(n, lambda: bearer_token(metadata))),
            ("  verifier.verify(token), cached", _per_call(n, lambda: verifier.verify(token))),
            ("  _request_id(metadata): secrets.token_hex(8)", _per_call(n, lambda: _request_id(metadata))),
            ("  secrets.token_hex(8) alone", _per_call(n, lambda: secrets.token_hex(8))),
            ("  bind_contextvars(method, request_id)", _per_call(n, lambda: structlog.contextvars.bind_contextvars(
                method=METHOD, request_id="0123456789abcdef"))),
            ("  bind_contextvars(organization, caller)", _per_call(n, lambda: structlog.contextvars.bind_contextvars(
                organization=str(uuid.UUID(int=1)), caller="x"))),
            ("  set principal, roles, deadline (3 contextvars)", _per_call(n, lambda: (
                tenancy_context.set_principal(None), tenancy_context.set_admitted_roles(frozenset()),
                tenancy_context.set_deadline(9.5)))),
            ("  time.perf_counter() x2", _per_call(n, lambda: (time.perf_counter(), time.perf_counter()))),
        ):
            rows.setdefault(name, []).append(value)
    width = max(map(len, rows))
    for name, values in rows.items():
        print(f"{name:<{width}} {median(values):7.2f} us")
    base = median(rows["task with the bare handler (baseline)"])
    print(f"\ninterceptor per call: {median(rows['task with intercept_service + wrapped handler']) - base:.1f} us "
          f"(of which intercept_service's hop: {median(rows['task with intercept_service + wrapped handler']) - median(rows['task with the wrapped handler only']):.1f} us)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
