"""Test fixtures: a real PostgreSQL (a throwaway embedded one unless DATABASE_URL is set),
provisioned and migrated once per run; real gRPC servers on ephemeral ports, each service
connected as its own database role (libs/registry.py `db_role`)."""

from __future__ import annotations

import importlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from libs import registry
from libs.db import migrate
from libs.db.embedded import EmbeddedPostgres
from libs.db.provision import DatabaseUrls, drop_database, provision, service_roles

# Property tests are deterministic in CI: a fixed seed, a bounded number of examples, no
# timing-based failures and no example database left in the checkout.
settings.register_profile("ci", derandomize=True, max_examples=300, deadline=None, database=None,
                          print_blob=False)
settings.load_profile("ci")

OWNER_PASSWORD = secrets.token_urlsafe(16)


def relaxed_address_limits():
    """identity's limits with the per-address ones out of reach: every test calls from
    127.0.0.1, so the suite would trip them (tests/test_auth_limits.py tests them with
    servers of its own). Per-account limits stay as in production."""
    from libs.settings import AuthLimits, RateLimit

    unlimited = RateLimit(attempts=1_000_000, window_seconds=1)
    return AuthLimits(login_address=unlimited, sign_up_address=unlimited, refresh_address=unlimited)


# Every identity server a test starts (its own Settings() included) gets those limits, unless
# the test passes limits of its own: the limiter's counters are shared through the database.
os.environ.setdefault("SOULKG_AUTH_LIMITS", relaxed_address_limits().model_dump_json())
ROLE_PASSWORDS = {role: secrets.token_urlsafe(16) for role in service_roles()}


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """URL of a role that may create roles and databases on the test server."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="soulkg-test-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp), durable=False).start()
        try:
            yield server.admin_url
        finally:
            server.stop()


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A temporary directory of this test alone, outside pytest's shared, rotated basetemp
    (a cluster's data directory must not vanish under it while another pytest run cleans up)."""
    with tempfile.TemporaryDirectory(prefix="soulkg-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def make_database(admin_url: str) -> Iterator[Callable[[str], DatabaseUrls]]:
    """Factory: a fresh, provisioned but unmigrated database, dropped at the end of the run."""
    created: list[str] = []

    def _make(label: str) -> DatabaseUrls:
        name = f"soulkg_test_{label}_{secrets.token_hex(4)}"
        created.append(name)
        return provision(admin_url, name, OWNER_PASSWORD, ROLE_PASSWORDS)

    yield _make
    for name in created:
        drop_database(admin_url, name)


@pytest.fixture(scope="session")
def database(make_database: Callable[[str], DatabaseUrls]) -> DatabaseUrls:
    """The suite's database, migrated to head. Tests that write use their own organizations.
    `database.service("crm")` is the URL of crm's own role."""
    urls = make_database("main")
    migrate.upgrade(urls.owner)
    return urls


# --- services ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory) -> Path:
    """A signing key pair plus the keys of trusted internal services ("webhook", "agents"), as
    make run makes: private halves in services-private/, public ones in services/."""
    from libs.tenancy.tokens import generate_key_pair

    directory = tmp_path_factory.mktemp("keys")
    generate_key_pair(directory, kid="test-1")
    (directory / "services").mkdir()
    for service in ("webhook", "agents"):
        generate_key_pair(directory / "services-private", kid=service)
        (directory / "services-private" / f"{service}.pub.pem").rename(directory / "services" / f"{service}.pub.pem")
    return directory


@pytest.fixture(scope="session")
async def service_dbs(database):
    """Every registered service's pool (TenantDatabase), connected as that service's own role:
    `service_dbs["crm"]`."""
    from libs.tenancy.database import TenantDatabase

    pools = {entry.name: await TenantDatabase.connect(database.service(entry.name), min_size=1, max_size=10)
             for entry in registry.SERVICES}
    yield pools
    for db in pools.values():
        await db.close()


@pytest.fixture(scope="session")
def app_db(service_dbs):
    """Some service's pool, for tests of shared machinery that need one (crm's)."""
    return service_dbs["crm"]


async def _serve(definition, db, keys_dir):
    """A service on a real port, built exactly as its server.py builds it; yields a channel."""
    from grpc import aio

    from libs.server.bootstrap import Resources, start_server
    from libs.settings import Settings
    from libs.tenancy.tokens import TokenVerifier, load_public_keys

    resources = Resources(db=db, verifier=TokenVerifier(load_public_keys(keys_dir)),
                          settings=Settings(keys_dir=keys_dir, auth_limits=relaxed_address_limits()))
    running = await start_server(definition, resources)
    channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
    yield channel
    await channel.close()
    await running.stop(0)


async def serve(name: str, service_dbs, keys_dir):
    """Registry service `name` (its server.py's DEFINITION) with its own role's pool."""
    definition = importlib.import_module(registry.service(name).module).DEFINITION
    async for channel in _serve(definition, service_dbs[name], keys_dir):
        yield channel


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
async def stack(service_dbs, keys_dir):
    """Every existing registry service, served in process on its own port with its own role's
    pool, and told where the others listen (so calls between services are real gRPC calls).
    Yields {name: port}."""
    from libs.server.bootstrap import Resources, start_server
    from libs.settings import Settings
    from libs.tenancy.tokens import TokenVerifier, load_public_keys

    ports = {entry.name: _free_port() for entry in registry.existing()}
    settings = Settings(keys_dir=keys_dir, service_addresses={n: f"127.0.0.1:{p}" for n, p in ports.items()},
                        auth_limits=relaxed_address_limits())
    verifier = TokenVerifier(load_public_keys(keys_dir))
    running = []
    for name, port in ports.items():
        definition = importlib.import_module(registry.service(name).module).DEFINITION
        resources = Resources(db=service_dbs[name], verifier=verifier, settings=settings)
        running.append((await start_server(definition, resources, address=f"127.0.0.1:{port}"), resources))
    yield ports
    for server, resources in running:
        await server.stop(0)
        await resources.clients.close()


def channel_fixture(name: str):
    """A session fixture `<name>_channel`: a channel to service `name` of the in-process stack."""

    @pytest.fixture(scope="session", name=f"{name}_channel")
    async def _channel(stack):
        from grpc import aio

        async with aio.insecure_channel(f"127.0.0.1:{stack[name]}") as channel:
            yield channel

    return _channel


identity_channel = channel_fixture("identity")
crm_channel = channel_fixture("crm")
catalog_channel = channel_fixture("catalog")
messaging_channel = channel_fixture("messaging")
agents_channel = channel_fixture("agents")
