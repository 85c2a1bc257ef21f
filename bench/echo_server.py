"""The transport ceiling: a bare grpc.aio server answering every call with the same bytes.

    python -m bench.echo_server <response size> <port> [--mode MODE --keys DIR] [--option NAME=VALUE ...]

No interceptor, no database, no protobuf: what grpc.aio itself costs per call. For the
experiments (bench/experiments_bench.py), `--mode`: `empty-interceptor` (an aio interceptor that
only continues), `interceptor` (the services' TenancyInterceptor: the call then needs a user's
token, verified with the public keys in `--keys`), `wrapped` (the TenancyInterceptor's per-call
work with the handler wrapped once at registration instead of through an aio interceptor),
`interceptor-no-log-context` (the TenancyInterceptor without its per-call log context);
`--option` passes a gRPC server option (an integer value, or a string).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import grpc
from grpc import aio

METHOD = "/bench.Echo/Call"


def _option(text: str) -> tuple[str, int | str]:
    name, _, value = text.partition("=")
    return name, int(value) if value.lstrip("-").isdigit() else value


class _Wrapped(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, tenancy) -> None:
        self._inner, self._tenancy, self._cache = inner, tenancy, {}

    def service(self, details):
        wrapped = self._cache.get(details.method)
        if wrapped is None:
            handler = self._inner.service(details)
            if handler is None:
                return None
            wrapped = self._cache[details.method] = self._tenancy._wrap(details.method, handler)
        return wrapped


async def serve(port: int, size: int, mode: str = "bare", keys: Path | None = None, options: list[tuple] = ()) -> None:
    payload = b"x" * size

    async def echo(request: bytes, context) -> bytes:
        return payload

    handlers = grpc.method_handlers_generic_handler("bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)})
    interceptors = []
    if mode == "empty-interceptor":
        class Empty(aio.ServerInterceptor):
            async def intercept_service(self, continuation, details):
                return await continuation(details)

        interceptors.append(Empty())
    elif mode in ("interceptor", "wrapped", "interceptor-no-log-context"):
        from libs.authz import ANY_USER
        from libs.tenancy.interceptors import TenancyInterceptor
        from libs.tenancy.tokens import TokenVerifier, load_public_keys

        tenancy = TenancyInterceptor(TokenVerifier(load_public_keys(keys)), {METHOD: ANY_USER})
        if mode == "interceptor-no-log-context":
            from bench.crm_variant import without_log_context

            without_log_context()
        if mode != "wrapped":
            interceptors.append(tenancy)
        else:  # the same per-call work, the handler wrapped once instead of an aio interceptor
            handlers = _Wrapped(handlers, tenancy)
    server = aio.server(interceptors=interceptors, options=list(options))
    server.add_generic_rpc_handlers([handlers])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("size", type=int)
    parser.add_argument("port", type=int)
    parser.add_argument("--mode", choices=["bare", "empty-interceptor", "interceptor", "wrapped",
                                                       "interceptor-no-log-context"], default="bare")
    parser.add_argument("--keys", type=Path, help="public keys that verify tokens (modes interceptor, wrapped)")
    parser.add_argument("--option", action="append", default=[], type=_option)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.size, args.mode, args.keys, args.option))
