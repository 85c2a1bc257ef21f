"""Brute-force and rate limits (README "Brute-force limits") over real gRPC against the real
PostgreSQL: two identity servers share the database, as two worker processes would, and
calls alternate between them. The limits here are short (locks of a fraction of a second)
so that a lock can be waited out; the servers trust 127.0.0.0/8 as a proxy, so each test
speaks from addresses of its own through `x-forwarded-for`."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import uuid
from datetime import timedelta

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from grpc import aio

from libs.server.bootstrap import Resources, start_server
from libs.settings import AuthLimits, RateLimit, Settings
from libs.tenancy.database import TenantDatabase
from libs.tenancy.service_auth import load_service_key, sign_assertion
from libs.tenancy.tokens import TokenVerifier, load_public_keys
from services.identity import domain
from services.identity.server import DEFINITION
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc
from tests.helpers import _details, error_info, rpc_error
from tests.identity_helpers import PASSWORD, sign_up

LOCK = 0.3  # seconds: the first lock of the failure-counting limits below
ACCOUNT_LOCK = 60  # the account lock outlasts a flood of 200 calls; tests move its clock instead
CACHE = 0.05  # how long a server believes a lock without asking the database again
LIMITS = AuthLimits(
    login_account=RateLimit(attempts=5, window_seconds=600, lock_seconds=ACCOUNT_LOCK,
                            max_lock_seconds=10 * ACCOUNT_LOCK),
    login_address=RateLimit(attempts=12, window_seconds=60, lock_seconds=LOCK, max_lock_seconds=10 * LOCK),
    sign_up_address=RateLimit(attempts=3, window_seconds=60),
    refresh_address=RateLimit(attempts=4, window_seconds=60, lock_seconds=LOCK, max_lock_seconds=10 * LOCK),
    refresh_family=RateLimit(attempts=3, window_seconds=60),
    change_password_user=RateLimit(attempts=3, window_seconds=60, lock_seconds=LOCK, max_lock_seconds=10 * LOCK),
    service_token=RateLimit(attempts=3, window_seconds=60),
    lock_cache_seconds=CACHE,
)


@pytest.fixture(scope="module")
async def servers(database, keys_dir):
    """Two identity servers, each with its own pool (its own 'process'), one database."""
    settings = Settings(keys_dir=keys_dir, trusted_proxies=["127.0.0.0/8", "::1/128"], auth_limits=LIMITS)
    running, channels, pools = [], [], []
    for _ in range(2):
        db = await TenantDatabase.connect(database.service("identity"), min_size=1, max_size=4)
        server = await start_server(DEFINITION, Resources(db=db, verifier=TokenVerifier(load_public_keys(keys_dir)),
                                                          settings=settings))
        pools.append(db)
        running.append(server)
        channels.append(aio.insecure_channel(f"127.0.0.1:{server.port}"))
    yield channels
    for channel, server, db in zip(channels, running, pools, strict=True):
        await channel.close()
        await server.stop(0)
        await db.close()


def new_address() -> str:
    """A client address nobody else in the suite uses (its own IPv6 /64)."""
    return f"2001:db8:{secrets.randbelow(2**16):x}:{secrets.randbelow(2**16):x}::{secrets.randbelow(2**16):x}"


def sent_from(address: str, metadata: list | None = None) -> list[tuple[str, str]]:
    return [*(metadata or []), ("x-forwarded-for", address)]


def auth(channel) -> identity_pb2_grpc.AuthServiceStub:
    return identity_pb2_grpc.AuthServiceStub(channel)


def login(slug: str, email: str, password: str) -> identity_pb2.LoginRequest:
    return identity_pb2.LoginRequest(organization_slug=slug, email=email, password=password)


def retry_delay(error: aio.AioRpcError) -> timedelta:
    info = _details(error, error_details_pb2.RetryInfo)
    assert info is not None, "a limited call carries a google.rpc.RetryInfo"
    return info.retry_delay.ToTimedelta()


def assert_limited(error: aio.AioRpcError, limit: str, at_most: float) -> timedelta:
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    info = error_info(error)
    assert (info.reason, info.domain, info.metadata["limit"]) == ("TOO_MANY_ATTEMPTS", "identity.soulkg.dev", limit)
    delay = retry_delay(error)
    assert timedelta(0) < delay <= timedelta(seconds=at_most)
    return delay


async def wait_out(delay: timedelta) -> None:
    await asyncio.sleep(delay.total_seconds() + 0.05)


async def end_lock(database, key: bytes) -> None:
    """What waiting out a lock does, without the wait: the lock (and the window that started
    with it) now start and end a moment ago; the servers ask the database again once their
    cached word on the lock is older than CACHE."""
    with psycopg.connect(database.admin) as conn:
        conn.execute("update auth_limits set blocked_until = now() - interval '1 ms',"
                     " window_start = now() - interval '1 ms' where key = %s and blocked_until > now()", [key])
    await asyncio.sleep(CACHE + 0.02)


async def test_a_brute_force_locks_the_account_on_every_server_and_other_accounts_keep_logging_in(
        servers, identity_channel, database):
    victim = await sign_up(identity_channel, "victim")
    bystander = await sign_up(identity_channel, "bystander")
    outcomes = []
    for attempt in range(200):  # from 200 addresses, alternating servers: only the account limit can bite
        error = await rpc_error(auth(servers[attempt % 2]).Login(
            login(victim.slug, victim.email, f"wrong password {attempt}"), metadata=sent_from(new_address())))
        outcomes.append(error)
        if attempt % 50 == 0:  # meanwhile, another account of another organization logs in on both
            for server in servers:
                await auth(server).Login(login(bystander.slug, bystander.email, PASSWORD),
                                         metadata=sent_from(new_address()))
    assert [error_info(e).reason for e in outcomes[:5]] == ["LOGIN_FAILED"] * 5
    for error in outcomes[5:]:
        assert_limited(error, "login.account", ACCOUNT_LOCK)
    # The right password is refused too while the lock lasts, on either server.
    for server in servers:
        error = await rpc_error(auth(server).Login(login(victim.slug, victim.email, PASSWORD),
                                                   metadata=sent_from(new_address())))
        assert_limited(error, "login.account", ACCOUNT_LOCK)
    # The 195 refusals wrote nothing: the count restarted at the lock, one lock so far.
    key = domain.login_account_key(victim.slug, victim.email, victim.email)
    with psycopg.connect(database.admin) as conn:
        assert conn.execute("select attempts, strikes from auth_limits where key = %s", [key]).fetchone() == (0, 1)

    # Once it has passed: five more wrong passwords, and the next lock lasts twice as long.
    await end_lock(database, key)
    for attempt in range(5):
        error = await rpc_error(auth(servers[attempt % 2]).Login(
            login(victim.slug, victim.email, "still wrong 123"), metadata=sent_from(new_address())))
        assert error_info(error).reason == "LOGIN_FAILED"
    error = await rpc_error(auth(servers[0]).Login(login(victim.slug, victim.email, PASSWORD),
                                                   metadata=sent_from(new_address())))
    assert retry_delay(error) > timedelta(seconds=ACCOUNT_LOCK)
    assert_limited(error, "login.account", 2 * ACCOUNT_LOCK)
    await end_lock(database, key)
    reply = await auth(servers[1]).Login(login(victim.slug, victim.email, PASSWORD), metadata=sent_from(new_address()))
    assert reply.user.id == victim.user.id
    # A success clears the account's count: five wrong passwords are answered again.
    for attempt in range(5):
        error = await rpc_error(auth(servers[attempt % 2]).Login(
            login(victim.slug, victim.email, "wrong again 123"), metadata=sent_from(new_address())))
        assert error_info(error).reason == "LOGIN_FAILED"
    with psycopg.connect(database.admin) as conn:
        assert conn.execute("select attempts, strikes from auth_limits where key = %s", [key]).fetchone() == (5, 0)


async def test_an_unknown_account_is_locked_the_same_way(servers):
    """A lock says nothing about whether the account exists."""
    slug, address = f"nobody-{secrets.token_hex(4)}", new_address()
    reasons = []
    for attempt in range(7):
        error = await rpc_error(auth(servers[attempt % 2]).Login(login(slug, "ghost@example.com", "whatever 1234"),
                                                                 metadata=sent_from(address)))
        reasons.append(error_info(error).reason)
    assert reasons == ["LOGIN_FAILED"] * 5 + ["TOO_MANY_ATTEMPTS"] * 2


async def test_one_address_is_limited_across_accounts_and_successes_give_attempts_back(servers, identity_channel):
    account = await sign_up(identity_channel, "by-address")
    address = new_address()
    for attempt in range(11):  # a different (unknown) email each time: no account limit
        error = await rpc_error(auth(servers[attempt % 2]).Login(
            login(account.slug, f"guess{attempt}@example.com", "wrong password 1"), metadata=sent_from(address)))
        assert error_info(error).reason == "LOGIN_FAILED"
    await auth(servers[0]).Login(login(account.slug, account.email, PASSWORD), metadata=sent_from(address))
    # The success gave its attempt back, so a 12th failure is still answered (without the
    # refund it would be the 13th attempt, and refused).
    error = await rpc_error(auth(servers[1]).Login(
        login(account.slug, "more@example.com", "wrong password 1"), metadata=sent_from(address)))
    assert error_info(error).reason == "LOGIN_FAILED"
    error = await rpc_error(auth(servers[0]).Login(login(account.slug, account.email, PASSWORD),
                                                   metadata=sent_from(address)))
    assert_limited(error, "login.address", LOCK)
    # Another address logs in to the same account at once.
    await auth(servers[1]).Login(login(account.slug, account.email, PASSWORD), metadata=sent_from(new_address()))
    # An IPv6 client is counted by its /64: another address of it is limited too.
    network = ipaddress.ip_network(f"{address}/64", strict=False)
    neighbour = str(network.network_address + 7)
    error = await rpc_error(auth(servers[1]).Login(login(account.slug, account.email, PASSWORD),
                                                   metadata=sent_from(neighbour)))
    assert_limited(error, "login.address", LOCK)


async def test_the_forwarded_address_is_believed_only_from_a_trusted_proxy(identity_channel, servers):
    """The suite's own identity trusts no proxy: there, x-forwarded-for changes nothing."""
    account = await sign_up(identity_channel, "untrusted-xff")
    stub = auth(identity_channel)
    await stub.Login(login(account.slug, account.email, PASSWORD), metadata=sent_from("2001:db8::dead"))
    reply = await identity_pb2_grpc.AuditServiceStub(identity_channel).ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(filter='action = "auth.login_succeeded"'), metadata=account.metadata)
    assert [event.client_address for event in reply.audit_events] == ["127.0.0.1"]
    address = new_address()
    await auth(servers[0]).Login(login(account.slug, account.email, PASSWORD), metadata=sent_from(address))
    reply = await identity_pb2_grpc.AuditServiceStub(servers[1]).ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(filter='action = "auth.login_succeeded"'), metadata=account.metadata)
    assert [event.client_address for event in reply.audit_events] == [address, "127.0.0.1"]


async def test_sign_ups_are_limited_per_address(servers):
    address = new_address()

    def request() -> identity_pb2.SignUpRequest:
        slug = f"rate-{secrets.token_hex(4)}"
        return identity_pb2.SignUpRequest(organization_name="Rate", organization_slug=slug,
                                          email=f"a@{slug}.example.com", password=PASSWORD)

    # Invalid requests are refused before the limiter and cost nothing.
    for _ in range(5):
        error = await rpc_error(auth(servers[0]).SignUp(identity_pb2.SignUpRequest(), metadata=sent_from(address)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    for attempt in range(3):
        await auth(servers[attempt % 2]).SignUp(request(), metadata=sent_from(address))
    error = await rpc_error(auth(servers[1]).SignUp(request(), metadata=sent_from(address)))
    assert_limited(error, "sign_up.address", 60)  # a rate: until its window ends
    await auth(servers[0]).SignUp(request(), metadata=sent_from(new_address()))


async def test_refresh_is_limited_per_session_and_per_address(servers, identity_channel):
    account = await sign_up(identity_channel, "refresh-limit")
    token = account.refresh_token
    for attempt in range(3):  # one session: 3 rotations in the window
        token = (await auth(servers[attempt % 2]).Refresh(identity_pb2.RefreshRequest(refresh_token=token),
                                                          metadata=sent_from(new_address()))).refresh_token
    error = await rpc_error(auth(servers[1]).Refresh(identity_pb2.RefreshRequest(refresh_token=token),
                                                     metadata=sent_from(new_address())))
    assert_limited(error, "refresh.family", 60)
    # The refused call did not spend the token: it still works once the window allows
    # (here: another session is unaffected).
    other = await auth(servers[0]).Login(login(account.slug, account.email, PASSWORD),
                                         metadata=sent_from(new_address()))
    await auth(servers[0]).Refresh(identity_pb2.RefreshRequest(refresh_token=other.refresh_token),
                                   metadata=sent_from(new_address()))

    address = new_address()
    fresh = await auth(servers[0]).Login(login(account.slug, account.email, PASSWORD),
                                         metadata=sent_from(new_address()))
    for attempt in range(4):  # made-up tokens from one address
        error = await rpc_error(auth(servers[attempt % 2]).Refresh(
            identity_pb2.RefreshRequest(refresh_token=f"{uuid.uuid4()}.{secrets.token_urlsafe(32)}"),
            metadata=sent_from(address)))
        assert error_info(error).reason == "INVALID_REFRESH_TOKEN"
    error = await rpc_error(auth(servers[0]).Refresh(identity_pb2.RefreshRequest(refresh_token=fresh.refresh_token),
                                                     metadata=sent_from(address)))
    assert_limited(error, "refresh.address", LOCK)


async def test_change_password_is_limited_per_user(servers, identity_channel):
    account = await sign_up(identity_channel, "chpw-limit")
    users = [identity_pb2_grpc.UserServiceStub(server) for server in servers]
    for attempt in range(3):
        error = await rpc_error(users[attempt % 2].ChangePassword(identity_pb2.ChangePasswordRequest(
            old_password=f"not it {attempt} 123", new_password="a brand new secret"), metadata=account.metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(users[1].ChangePassword(identity_pb2.ChangePasswordRequest(
        old_password=PASSWORD, new_password="a brand new secret"), metadata=account.metadata))
    delay = assert_limited(error, "change_password.user", LOCK)
    await wait_out(delay)
    await users[0].ChangePassword(identity_pb2.ChangePasswordRequest(
        old_password=PASSWORD, new_password="a brand new secret"), metadata=account.metadata)


async def test_service_tokens_are_limited_per_service_and_organization(servers, identity_channel, keys_dir):
    a = await sign_up(identity_channel, "svc-rate-a")
    b = await sign_up(identity_channel, "svc-rate-b")
    key = load_service_key(keys_dir / "services-private" / "webhook.key.pem")

    def exchange(server, org_id: str):
        return auth(server).IssueServiceToken(identity_pb2.IssueServiceTokenRequest(
            organization_id=org_id, service_name="webhook", assertion=sign_assertion(key, "webhook", org_id)))

    for attempt in range(3):
        await exchange(servers[attempt % 2], a.organization.id)
    error = await rpc_error(exchange(servers[1], a.organization.id))
    assert_limited(error, "service_token", 60)
    await exchange(servers[0], b.organization.id)  # another organization: its own count
