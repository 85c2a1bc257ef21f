"""The shared bootstrap (libs/server): health follows the database and shutdown, reflection
lists the services, and a graceful stop lets in-flight calls finish."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from libs.authz import PUBLIC
from libs.server import bootstrap
from libs.server.bootstrap import Resources, ServiceDefinition, start_server
from libs.tenancy.database import TenantDatabase

SERVICE = "soulkg.test.v1.SlowService"


def _register(server: aio.Server, resources: Resources) -> None:
    async def slow(request: bytes, context) -> bytes:
        await asyncio.sleep(0.5)
        return b"done"

    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        SERVICE, {"Slow": grpc.unary_unary_rpc_method_handler(slow)})])


DEFINITION = ServiceDefinition(name="slow", register=_register, extra_service_names=[SERVICE],
                               policies={SERVICE: {"Slow": PUBLIC}})


async def _status(channel: aio.Channel, service: str = "") -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return reply.status


async def _eventually(predicate, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_serving_while_the_database_answers_and_not_serving_in_shutdown(app_db):
    running = await start_server(DEFINITION, Resources(db=app_db, verifier=None))
    channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        serving = health_pb2.HealthCheckResponse.SERVING

        async def is_serving() -> bool:
            return await _status(channel) == serving

        assert await _eventually(is_serving)
        assert await _status(channel, SERVICE) == serving
        in_flight = asyncio.ensure_future(channel.unary_unary(f"/{SERVICE}/Slow")(b"", timeout=5))
        await asyncio.sleep(0.1)
        stopping = asyncio.ensure_future(running.stop(grace=3))
        await asyncio.sleep(0.05)
        assert await in_flight == b"done"  # the graceful stop let it finish
        await stopping
    finally:
        await channel.close()


async def test_not_serving_when_the_database_is_down(monkeypatch):
    monkeypatch.setattr(bootstrap, "HEALTH_POLL_SECONDS", 0.2)
    pool = await asyncpg.create_pool("postgresql://nobody:x@127.0.0.1:1/none", min_size=0, max_size=1)
    running = await start_server(DEFINITION, Resources(db=TenantDatabase(pool), verifier=None))
    channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        await asyncio.sleep(0.5)
        assert await _status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await channel.close()
        await running.stop(0)
        await pool.close()


async def test_reflection_lists_the_services(app_db):
    running = await start_server(DEFINITION, Resources(db=app_db, verifier=None))
    channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        reply = await call.read()
        await call.done_writing()
        names = {s.name for s in reply.list_services_response.service}
        assert {SERVICE, "grpc.health.v1.Health"} <= names
    finally:
        await channel.close()
        await running.stop(0)
