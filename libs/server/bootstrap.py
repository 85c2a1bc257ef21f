"""One way to build and run a service: grpc.aio server + tenancy interceptor + health +
reflection + graceful shutdown + structured logs.

A service describes itself with a `ServiceDefinition` and calls `main(definition)` from its
`server.py`. Tests call `start_server(...)` to run the same server in-process on port 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from libs.server.logs import configure_logging
from libs.tenancy.database import TenantDatabase
from libs.tenancy.interceptors import TenancyInterceptor
from libs.tenancy.tokens import TokenVerifier, load_public_keys

log = logging.getLogger("soulkg.server")

SHUTDOWN_GRACE_SECONDS = 5.0
HEALTH_POLL_SECONDS = 5.0


@dataclass
class Resources:
    """What a service's servicers are built from."""

    db: TenantDatabase
    verifier: TokenVerifier | None
    keys_dir: Path | None = None


def services_in(file_descriptor) -> list[str]:
    """Full names of every service a generated *_pb2 module's file defines."""
    return [service.full_name for service in file_descriptor.services_by_name.values()]


@dataclass(frozen=True)
class ServiceDefinition:
    name: str  # "crm"
    default_port: int
    service_names: Sequence[str]  # full proto names, for health and reflection
    register: Callable[[aio.Server, Resources], Awaitable[None] | None]
    public_methods: frozenset[str] = frozenset()
    module: str = ""  # "services.crm.server": what a worker process runs



@dataclass
class RunningServer:
    server: aio.Server
    port: int
    health: health.aio.HealthServicer
    resources: Resources
    _watcher: asyncio.Task | None = None

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """NOT_SERVING first (so balancers drain us), then finish in-flight calls."""
        if self._watcher:
            self._watcher.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def _set_health(servicer: health.aio.HealthServicer, names: Sequence[str], status) -> None:
    for name in ("", *names):
        await servicer.set(name, status)


async def _watch_database(running: RunningServer, names: Sequence[str]) -> None:
    """SERVING while the database answers, NOT_SERVING while it does not."""
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    current = None
    while True:
        try:
            await asyncio.wait_for(running.resources.db.ping(), timeout=HEALTH_POLL_SECONDS)
            status = serving
        except Exception:  # noqa: BLE001 - any failure means not serving
            status = not_serving
        if status != current:
            await _set_health(running.health, names, status)
            log.info("health %s", health_pb2.HealthCheckResponse.ServingStatus.Name(status))
            current = status
        await asyncio.sleep(HEALTH_POLL_SECONDS if status == serving else 0.5)


async def start_server(definition: ServiceDefinition, resources: Resources, *,
                       address: str = "127.0.0.1:0", reuse_port: bool = False) -> RunningServer:
    server = aio.server(
        interceptors=[TenancyInterceptor(resources.verifier, definition.public_methods)],
        options=[("grpc.so_reuseport", 1 if reuse_port else 0)],
    )
    registered = definition.register(server, resources)
    if asyncio.iscoroutine(registered):
        await registered
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*definition.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(address)
    await server.start()
    await _set_health(health_servicer, definition.service_names, health_pb2.HealthCheckResponse.NOT_SERVING)
    running = RunningServer(server, port, health_servicer, resources)
    running._watcher = asyncio.create_task(_watch_database(running, definition.service_names))
    return running


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def require_fast_protobuf() -> None:
    """The pure-Python protobuf backend is several times slower; refuse to serve on it."""
    from google.protobuf.internal import api_implementation

    if api_implementation.Type() != "upb":
        raise SystemExit(f"protobuf runs on its '{api_implementation.Type()}' backend, not upb: "
                         "unset PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION or reinstall protobuf")


async def serve(definition: ServiceDefinition) -> None:
    """The process entry point: configuration from the environment, runs until SIGINT/SIGTERM."""
    configure_logging(definition.name)
    require_fast_protobuf()
    database_url = os.environ.get("SOULKG_APP_DATABASE_URL")
    if not database_url:
        raise SystemExit("SOULKG_APP_DATABASE_URL is not set (make run sets it)")
    keys_dir = _env_path("SOULKG_KEYS_DIR")
    verifier = TokenVerifier(load_public_keys(keys_dir)) if keys_dir and keys_dir.exists() else None
    port = int(os.environ.get(f"SOULKG_{definition.name.upper()}_PORT", definition.default_port))
    host = os.environ.get("SOULKG_HOST", "127.0.0.1")
    pool_size = int(os.environ.get("SOULKG_DB_POOL_SIZE", "10"))
    workers = int(os.environ.get("SOULKG_WORKERS", "1"))
    if workers > 1 and os.environ.get("SOULKG_PAGE_TOKEN_SECRET") is None:
        raise SystemExit("with SOULKG_WORKERS > 1 set SOULKG_PAGE_TOKEN_SECRET (shared by the workers)")

    db = await TenantDatabase.connect(database_url, min_size=min(2, pool_size), max_size=pool_size)
    resources = Resources(db=db, verifier=verifier, keys_dir=keys_dir)
    running = await start_server(definition, resources, address=f"{host}:{port}", reuse_port=workers > 1)
    log.info("listening on %s:%s", host, running.port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await running.stop()
    await db.close()
    log.info("stopped")


def _run_workers(definition: ServiceDefinition, workers: int) -> None:
    """SOULKG_WORKERS > 1: that many copies of this process share the port (SO_REUSEPORT;
    the kernel spreads connections), so one service uses more than one core. The parent
    only forwards SIGINT/SIGTERM and waits."""
    import subprocess
    import sys

    env = {**os.environ, "SOULKG_WORKER": "1"}
    children = [subprocess.Popen([sys.executable, "-m", definition.module], env=env) for _ in range(workers)]

    def forward(signum, frame):  # noqa: ARG001
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    codes = [child.wait() for child in children]
    raise SystemExit(max(codes))


def main(definition: ServiceDefinition) -> None:
    workers = int(os.environ.get("SOULKG_WORKERS", "1"))
    if workers > 1 and not os.environ.get("SOULKG_WORKER"):
        _run_workers(definition, workers)
    asyncio.run(serve(definition))
