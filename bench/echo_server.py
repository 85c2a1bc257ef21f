"""The transport ceiling: a bare grpc.aio server answering every call with the same bytes.

    python -m bench.echo_server <response size> <port>

No interceptor, no database, no protobuf: what grpc.aio itself costs per call.
"""

from __future__ import annotations

import asyncio
import sys

import grpc
from grpc import aio


async def serve(port: int, size: int) -> None:
    payload = b"x" * size

    async def echo(request: bytes, context) -> bytes:
        return payload

    server = aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)})])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[2]), int(sys.argv[1])))
