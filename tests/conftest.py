"""Test fixtures: a real PostgreSQL (a throwaway embedded one unless DATABASE_URL is set),
provisioned and migrated once per run; real gRPC servers on ephemeral ports."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from libs.db import migrate
from libs.db.embedded import EmbeddedPostgres
from libs.db.provision import DatabaseUrls, drop_database, provision

# Property tests are deterministic in CI: a fixed seed, a bounded number of examples, no
# timing-based failures and no example database left in the checkout.
settings.register_profile("ci", derandomize=True, max_examples=300, deadline=None, database=None,
                          print_blob=False)
settings.load_profile("ci")

ROLE_PASSWORDS = {"owner": secrets.token_urlsafe(16), "app": secrets.token_urlsafe(16)}


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """URL of a role that may create roles and databases on the test server."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="soulkg-test-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp)).start()
        try:
            yield server.admin_url
        finally:
            server.stop()


@pytest.fixture(scope="session")
def make_database(admin_url: str) -> Iterator[Callable[[str], DatabaseUrls]]:
    """Factory: a fresh, provisioned but unmigrated database, dropped at the end of the run."""
    created: list[str] = []

    def _make(label: str) -> DatabaseUrls:
        name = f"soulkg_test_{label}_{secrets.token_hex(4)}"
        created.append(name)
        return provision(admin_url, name, ROLE_PASSWORDS["owner"], ROLE_PASSWORDS["app"])

    yield _make
    for name in created:
        drop_database(admin_url, name)


@pytest.fixture(scope="session")
def database(make_database: Callable[[str], DatabaseUrls]) -> DatabaseUrls:
    """The suite's database, migrated to head. Tests that write use their own organizations."""
    urls = make_database("main")
    migrate.upgrade(urls.owner)
    return urls


# --- services ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory) -> Path:
    """A signing key pair plus a trusted internal service ("webhook") key, as make run makes."""
    from libs.tenancy.tokens import generate_key_pair

    directory = tmp_path_factory.mktemp("keys")
    generate_key_pair(directory, kid="test-1")
    generate_key_pair(directory / "services-private", kid="webhook")
    (directory / "services").mkdir()
    (directory / "services-private" / "webhook.pub.pem").rename(directory / "services" / "webhook.pub.pem")
    return directory


@pytest.fixture(scope="session")
async def app_db(database):
    from libs.tenancy.database import TenantDatabase

    db = await TenantDatabase.connect(database.app, min_size=1, max_size=10)
    yield db
    await db.close()


async def _serve(definition, app_db, keys_dir):
    """A service on a real port, built exactly as its server.py builds it; yields a channel."""
    from grpc import aio

    from libs.server.bootstrap import Resources, start_server
    from libs.settings import Settings
    from libs.tenancy.tokens import TokenVerifier, load_public_keys

    resources = Resources(db=app_db, verifier=TokenVerifier(load_public_keys(keys_dir)),
                          settings=Settings(keys_dir=keys_dir))
    running = await start_server(definition, resources)
    channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
    yield channel
    await channel.close()
    await running.stop(0)


@pytest.fixture(scope="session")
async def identity_channel(app_db, keys_dir):
    from services.identity.server import DEFINITION

    async for channel in _serve(DEFINITION, app_db, keys_dir):
        yield channel


@pytest.fixture(scope="session")
async def crm_channel(app_db, keys_dir):
    from services.crm.server import DEFINITION

    async for channel in _serve(DEFINITION, app_db, keys_dir):
        yield channel
