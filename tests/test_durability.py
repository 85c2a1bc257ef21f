"""Acknowledged writes survive a crash of the database: CreateClient runs under load against
make run's (durable) embedded PostgreSQL, the whole postmaster process group is killed with
SIGKILL, the database comes back, and every client whose creation was answered OK is stored.
Calls caught by the crash get UNAVAILABLE (retryable), never INTERNAL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
from grpc import aio

from libs.db import migrate
from libs.db.embedded import EmbeddedPostgres
from libs.db.provision import OWNER_ROLE, provision, service_roles
from libs.server.bootstrap import Resources, start_server
from libs.tenancy.database import TenantDatabase
from libs.tenancy.tokens import TokenVerifier, load_public_keys, load_signer
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc


def _kill_postmaster(server: EmbeddedPostgres) -> None:
    """SIGKILL to the postmaster and every backend at once, like a power cut (the backends
    may sit in another process group, so they are found by parent pid)."""
    postmaster = int((server.pgdata / "postmaster.pid").read_text().splitlines()[0])
    os.kill(postmaster, signal.SIGSTOP)  # no new backend is forked while we look for them
    victims = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:  # the parent pid
            victims.append(int(stat.parent.name))
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in victims:  # gone before the restart, or the new postmaster finds their memory
        while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
            time.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


async def _restart(server: EmbeddedPostgres) -> None:
    """Start it again as make run's supervisor does: retrying while the dead cluster's last
    processes let go of its shared memory (a loaded machine reaps them slowly)."""
    for attempt in range(40):
        try:
            server.start()
            return
        except RuntimeError:
            if attempt == 39:
                raise
            await asyncio.sleep(0.25)


async def _until(predicate) -> None:
    while not predicate():  # noqa: ASYNC110 - polls a counter the writers bump
        await asyncio.sleep(0.02)


async def test_acknowledged_creates_survive_a_database_crash(private_tmp, keys_dir):
    from services.crm.server import DEFINITION

    server = EmbeddedPostgres(private_tmp / "pg").start()  # durable, as make run starts it
    passwords = {role: uuid.uuid4().hex for role in (OWNER_ROLE, *service_roles())}
    urls = provision(server.admin_url, "soulkg", passwords[OWNER_ROLE],
                     {role: passwords[role] for role in service_roles()})
    migrate.upgrade(urls.owner)
    org = uuid.uuid4()
    with psycopg.connect(urls.admin, autocommit=True) as conn:
        conn.execute("insert into organizations (id, name, slug) values (%s, 'Crash', 'crash-test')", [org])
    token, _ = load_signer(keys_dir).issue(organization_id=org, subject="service:webhook", kind="service")
    db = await TenantDatabase.connect(urls.service("crm"), min_size=1, max_size=8)
    running = await start_server(DEFINITION, Resources(db=db, verifier=TokenVerifier(load_public_keys(keys_dir))))
    acknowledged: set[str] = set()
    outcomes: Counter[str] = Counter()
    stop = asyncio.Event()

    async def writer(number: int, stub) -> None:
        sequence = 0
        while not stop.is_set():
            sequence += 1
            phone = f"+99670{number:02d}{sequence:05d}"
            try:
                await stub.CreateClient(crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone=phone)),
                                        metadata=[("authorization", f"Bearer {token}")], timeout=5)
                acknowledged.add(phone)
                outcomes["OK"] += 1
            except aio.AioRpcError as error:
                outcomes[error.code().name] += 1
                await asyncio.sleep(0.05)

    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = crm_pb2_grpc.ClientServiceStub(channel)
            writers = [asyncio.create_task(writer(n, stub)) for n in range(8)]
            await _until(lambda: outcomes["OK"] >= 200)
            _kill_postmaster(server)
            await asyncio.sleep(0.5)
            await _restart(server)  # same data directory and port; crash recovery replays the WAL
            before = outcomes["OK"]
            await _until(lambda: outcomes["OK"] >= before + 100)  # it recovers without a restart
            stop.set()
            await asyncio.gather(*writers)
    finally:
        await running.stop(0)
        await db.close()

    with psycopg.connect(urls.admin) as conn:
        stored = {phone for (phone,) in conn.execute("select phone from clients where organization_id = %s", [org])}
    server.stop()
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged creates lost"
    assert set(outcomes) <= {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"}, outcomes
    print(f"acknowledged {len(acknowledged)}, stored {len(stored)}, outcomes {dict(outcomes)}")
