"""One way to build and run a service: grpc.aio server + tenancy interceptor + health +
reflection + graceful shutdown + structured logs.

A service describes itself with a `ServiceDefinition` and calls `main(definition)` from its
`server.py`. Tests call `start_server(...)` to run the same server in-process on port 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from libs import registry
from libs.authz import Policies, method_rules, undeclared
from libs.clients import ServiceClients
from libs.errors import ERROR_DOMAIN
from libs.pagination import PageTokenCodec
from libs.server.logs import configure_logging
from libs.settings import Settings
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
    settings: Settings = field(default_factory=Settings)
    clients: ServiceClients | None = None
    # A service's background work to end on shutdown (an event hub, a sender loop): awaited
    # by RunningServer.stop, last added first, while in-flight calls get their grace period.
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.clients is None:
            self.clients = ServiceClients(self.settings)

    @property
    def keys_dir(self) -> Path | None:
        return self.settings.keys_dir

    @cached_property
    def page_tokens(self) -> PageTokenCodec:
        return PageTokenCodec(self.settings.page_token_key)


def services_in(file_descriptor) -> list[str]:
    """Full names of every service a generated *_pb2 module's file defines."""
    return [service.full_name for service in file_descriptor.services_by_name.values()]


@dataclass(frozen=True)
class ServiceDefinition:
    """A service's server: its registry name, the proto files it serves, how to add its
    servicers, and its authorization table (services/<name>/policies.py)."""

    name: str  # "crm": its entry in libs/registry.py
    register: Callable[[aio.Server, Resources], Awaitable[None] | None]
    policies: Policies
    file_descriptors: Sequence = ()  # the *_pb2.DESCRIPTOR files whose services it serves
    extra_service_names: Sequence[str] = ()  # services with no descriptor (tests' generic handlers)

    @property
    def service_names(self) -> list[str]:
        return [*(name for fd in self.file_descriptors for name in services_in(fd)), *self.extra_service_names]

    @property
    def error_domain(self) -> str:
        return registry.BY_NAME[self.name].error_domain if self.name in registry.BY_NAME else ERROR_DOMAIN


@dataclass
class RunningServer:
    server: aio.Server
    port: int
    health: health.aio.HealthServicer
    resources: Resources
    _watcher: asyncio.Task | None = None

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """NOT_SERVING first (so balancers drain us), then refuse new calls, run the
        resources' shutdown callbacks (which end long-lived streams) and let in-flight calls
        finish within `grace`."""
        if self._watcher:
            self._watcher.cancel()
        await self.health.enter_graceful_shutdown()
        stopping = asyncio.ensure_future(self.server.stop(grace))  # no new calls from here on
        for callback in reversed(self.resources.on_shutdown):
            try:
                await callback()
            except Exception:  # noqa: BLE001 - one failing callback must not keep the others from running
                log.exception("shutdown callback failed")
        await stopping


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
    missing = undeclared(definition.policies, definition.file_descriptors)
    if missing:
        raise RuntimeError(f"{definition.name}: methods with no authorization policy: {', '.join(missing)}")
    server = aio.server(
        interceptors=[TenancyInterceptor(resources.verifier, method_rules(definition.policies),
                                         error_domain=definition.error_domain,
                                         trusted_proxies=resources.settings.trusted_proxies)],
        options=[("grpc.so_reuseport", 1 if reuse_port else 0),
                 # Clients reconnect every few minutes, so they re-resolve DNS and reach
                 # replicas added by a scale-up (docs/scaling.md).
                 ("grpc.max_connection_age_ms", 300_000), ("grpc.max_connection_age_grace_ms", 10_000)],
    )
    registered = definition.register(server, resources)
    if asyncio.iscoroutine(registered):
        await registered
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*definition.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    credentials = resources.settings.server_credentials()
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    await server.start()
    await _set_health(health_servicer, definition.service_names, health_pb2.HealthCheckResponse.NOT_SERVING)
    running = RunningServer(server, port, health_servicer, resources)
    running._watcher = asyncio.create_task(_watch_database(running, definition.service_names))
    return running


def require_fast_protobuf() -> None:
    """The pure-Python protobuf backend is several times slower; refuse to serve on it."""
    from google.protobuf.internal import api_implementation

    if api_implementation.Type() != "upb":
        raise SystemExit(f"protobuf runs on its '{api_implementation.Type()}' backend, not upb: "
                         "unset PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION or reinstall protobuf")


async def serve(definition: ServiceDefinition, settings: Settings) -> None:
    """The process entry point: configuration from the settings, runs until SIGINT/SIGTERM."""
    configure_logging(definition.name, settings.log_level)
    require_fast_protobuf()
    if not settings.database_url:
        raise SystemExit("SOULKG_DATABASE_URL is not set (make run sets it)")
    if settings.workers > 1 and settings.page_token_secret is None:
        raise SystemExit("with SOULKG_WORKERS > 1 set SOULKG_PAGE_TOKEN_SECRET (shared by the workers)")
    keys_dir = settings.keys_dir
    verifier = TokenVerifier(load_public_keys(keys_dir)) if keys_dir and keys_dir.exists() else None
    port = settings.listen_port(definition.name)

    db = await TenantDatabase.connect(settings.database_url, min_size=min(2, settings.db_pool_size),
                                      max_size=settings.db_pool_size)
    resources = Resources(db=db, verifier=verifier, settings=settings)
    running = await start_server(definition, resources, address=f"{settings.host}:{port}",
                                 reuse_port=settings.workers > 1)
    log.info("listening on %s:%s", settings.host, running.port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await running.stop()
    await resources.clients.close()
    await db.close()
    log.info("stopped")


def _run_workers(definition: ServiceDefinition, workers: int) -> None:
    """SOULKG_WORKERS > 1: that many copies of this process share the port (SO_REUSEPORT;
    the kernel spreads connections), so one service uses more than one core. The parent
    only forwards SIGINT/SIGTERM and waits."""
    import os

    env = {**os.environ, "SOULKG_WORKER": "1"}
    module = registry.service(definition.name).module
    children = [subprocess.Popen([sys.executable, "-m", module], env=env) for _ in range(workers)]

    def forward(signum, frame):  # noqa: ARG001
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    codes = [child.wait() for child in children]
    raise SystemExit(max(codes))


def main(definition: ServiceDefinition) -> None:
    settings = Settings()
    if settings.workers > 1 and not settings.worker:
        _run_workers(definition, settings.workers)
    asyncio.run(serve(definition, settings))
