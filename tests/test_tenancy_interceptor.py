"""The tenancy interceptor over a real gRPC channel: which tokens get in, and what the
handler sees. A tiny generic service (raw bytes) stands in for a business method."""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid

import grpc
import jwt
import pytest
from grpc import aio

from libs.authz import ANY_USER, PUBLIC
from libs.errors import InvalidArgument
from libs.server.bootstrap import Resources, ServiceDefinition, start_server
from libs.tenancy import context as tenancy_context
from libs.tenancy.database import TenantDatabase
from libs.tenancy.interceptors import ForwardCallerInterceptor
from libs.tenancy.tokens import ALGORITHM, AUDIENCE, ISSUER, public_key_pem
from tests.helpers import error_info, field_violations, new_signer, user_token, verifier_for

SERVICE = "soulkg.test.v1.ProbeService"


def _register(server: aio.Server, resources: Resources) -> None:
    async def who_am_i(request: bytes, context) -> bytes:
        principal = tenancy_context.require_principal()
        async with resources.db.transaction() as conn:
            org_seen = await conn.fetchval("select current_setting('app.current_organization_id')")
            timeout = await conn.fetchval("select current_setting('statement_timeout')")
        return json.dumps({"org": str(principal.organization_id), "role": principal.role,
                           "org_seen": org_seen, "timeout": timeout}).encode()

    async def public_ping(request: bytes, context) -> bytes:
        return b"pong" if tenancy_context.current_principal() is None else b"principal?"

    async def bad_input(request: bytes, context) -> bytes:
        raise InvalidArgument.field("phone", "must be E.164")

    async def boom(request: bytes, context) -> bytes:
        raise RuntimeError("secret internal detail")

    async def sql_error(request: bytes, context) -> bytes:
        async with resources.db.transaction() as conn:
            await conn.execute("select 'not-a-uuid'::uuid")
        return b""

    async def relay(request: bytes, context) -> bytes:
        """Calls WhoAmI on the address in the request through a forwarding channel, with no
        metadata of its own: the caller's token and deadline must travel along."""
        async with aio.insecure_channel(request.decode(), interceptors=[ForwardCallerInterceptor()]) as channel:
            return await channel.unary_unary(f"/{SERVICE}/WhoAmI")(b"")

    handlers = {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in {
        "WhoAmI": who_am_i, "PublicPing": public_ping, "BadInput": bad_input, "Boom": boom,
        "SqlError": sql_error, "Relay": relay}.items()}
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])


@pytest.fixture(scope="module")
def signer():
    return new_signer("kid-1")


@pytest.fixture(scope="module")
async def probe(database, signer):
    db = await TenantDatabase.connect(database.service("crm"), min_size=1, max_size=4)
    definition = ServiceDefinition(name="probe", register=_register, extra_service_names=[SERVICE], policies={
        SERVICE: {"WhoAmI": ANY_USER, "PublicPing": PUBLIC, "BadInput": ANY_USER, "Boom": ANY_USER,
                  "SqlError": ANY_USER, "Relay": ANY_USER}})
    running = await start_server(definition, Resources(db=db, verifier=verifier_for(signer)))
    channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
    channel.port = running.port
    yield channel
    await channel.close()
    await running.stop(0)
    await db.close()


def real_user(database, role: str = "MANAGER") -> tuple[uuid.UUID, uuid.UUID]:
    """An organization and an active user of it (rows written as the superuser): a user's call
    checks the user's current row (auth.assert_caller), so tokens must name a real user."""
    import psycopg

    org, user = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database.admin, autocommit=True) as conn:
        conn.execute("insert into organizations (id, name, slug) values (%s, 'Probe', %s)",
                     [org, f"probe-{org.hex[:12]}"])
        conn.execute("insert into users (organization_id, id, email, password_hash, role)"
                     " values (%s, %s, 'probe@example.com', 'x', %s)", [org, user, role])
    return org, user


@pytest.fixture
def member(database, signer) -> tuple[uuid.UUID, str]:
    """(organization, a MANAGER's token) for a real user."""
    org, user = real_user(database)
    return org, user_token(signer, org, role="MANAGER", user_id=user)


async def call(channel: aio.Channel, method: str, token: str | None = None, timeout: float = 5):
    metadata = [("authorization", f"Bearer {token}")] if token is not None else None
    return await channel.unary_unary(f"/{SERVICE}/{method}")(b"", metadata=metadata, timeout=timeout)


async def test_valid_token_reaches_handler_with_its_organization(probe, member):
    org, token = member
    reply = json.loads(await call(probe, "WhoAmI", token))
    assert reply["org"] == str(org)
    assert reply["org_seen"] == str(org)
    assert reply["role"] == "MANAGER"


async def test_calls_to_other_services_forward_the_callers_token_and_deadline(probe, member):
    org, token = member
    target = f"127.0.0.1:{probe.port}".encode()
    reply = json.loads(await probe.unary_unary(f"/{SERVICE}/Relay")(
        target, metadata=[("authorization", f"Bearer {token}")], timeout=2))
    assert reply["org"] == str(org) and reply["role"] == "MANAGER"
    assert int(reply["timeout"].removesuffix("ms")) <= 2000  # the downstream call inherited the deadline


async def test_statement_timeout_follows_the_callers_deadline(probe, member):
    reply = json.loads(await call(probe, "WhoAmI", member[1], timeout=2))
    timeout_ms = int(reply["timeout"].removesuffix("ms"))
    assert 1000 < timeout_ms <= 2000


async def test_public_method_needs_no_token(probe):
    assert await call(probe, "PublicPing") == b"pong"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(org: uuid.UUID, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "org": str(org), "role": "ADMIN",
              "kind": "user", "iat": now, "exp": now + 300}
    claims.update(overrides)
    return claims


def _hmac_signed(secret: bytes, org: uuid.UUID) -> str:
    """The classic algorithm-confusion forgery: HS256 keyed with the verifier's public key."""
    signing_input = _b64({"alg": "HS256", "typ": "JWT", "kid": "kid-1"}) + "." + _b64(_claims(org))
    mac = hmac.new(secret, signing_input.encode(), "sha256").digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _bad_tokens(signer) -> dict[str, str | None]:
    org = uuid.uuid4()
    other = new_signer("kid-1")  # same kid, different key
    good = user_token(signer, org)
    header, payload, signature = good.split(".")
    tampered_payload = _b64({**jwt.decode(good, options={"verify_signature": False}), "org": str(uuid.uuid4())})
    public_pem = public_key_pem(signer._key.public_key())
    return {
        "no token": None,
        "garbage": "not-a-jwt",
        "empty bearer": "",
        "alg none": _b64({"alg": "none", "typ": "JWT", "kid": "kid-1"}) + "." + _b64(_claims(org)) + ".",
        "signed by another key": user_token(other, org),
        "hmac with the public key": _hmac_signed(public_pem, org),
        "expired": jwt.encode(_claims(org, iat=int(time.time()) - 3600, exp=int(time.time()) - 600),
                              signer._key, algorithm=ALGORITHM, headers={"kid": "kid-1"}),
        "wrong audience": jwt.encode(_claims(org, aud="someone-else"), signer._key, algorithm=ALGORITHM,
                                     headers={"kid": "kid-1"}),
        "wrong issuer": jwt.encode(_claims(org, iss="evil"), signer._key, algorithm=ALGORITHM,
                                   headers={"kid": "kid-1"}),
        "missing exp": jwt.encode({k: v for k, v in _claims(org).items() if k != "exp"}, signer._key,
                                  algorithm=ALGORITHM, headers={"kid": "kid-1"}),
        "unknown kid": jwt.encode(_claims(org), signer._key, algorithm=ALGORITHM, headers={"kid": "kid-2"}),
        "tampered payload": f"{header}.{tampered_payload}.{signature}",
    }


@pytest.mark.parametrize("case", list(_bad_tokens(new_signer("kid-1")).keys()))
async def test_rejected_tokens(probe, signer, case):
    token = _bad_tokens(signer)[case]
    with pytest.raises(aio.AioRpcError) as caught:
        await call(probe, "WhoAmI", token)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_info(caught.value)
    assert info is not None and info.domain == "soulkg.dev" and info.reason


def test_key_rotation_two_keys_valid_at_once():
    old, new = new_signer("old"), new_signer("new")
    verifier = verifier_for(old, new)
    org = uuid.uuid4()
    assert verifier.verify(user_token(old, org)).organization_id == org
    assert verifier.verify(user_token(new, org)).organization_id == org


async def test_domain_error_becomes_invalid_argument_with_field_violation(probe, signer):
    with pytest.raises(aio.AioRpcError) as caught:
        await call(probe, "BadInput", user_token(signer, uuid.uuid4()))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {"phone": "must be E.164"}


async def test_unexpected_exception_is_internal_without_leaking(probe, signer):
    with pytest.raises(aio.AioRpcError) as caught:
        await call(probe, "Boom", user_token(signer, uuid.uuid4()))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (caught.value.details() or "")


async def test_postgres_data_error_is_invalid_argument_not_internal(probe, member):
    with pytest.raises(aio.AioRpcError) as caught:
        await call(probe, "SqlError", member[1])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "uuid" not in (caught.value.details() or "")


def test_protobuf_runs_on_upb():
    from libs.server.bootstrap import require_fast_protobuf

    require_fast_protobuf()  # raises SystemExit on the slow pure-Python backend


def test_timestamps_keep_microseconds_and_time_zone():
    from datetime import UTC, datetime, timedelta, timezone

    from libs.wire import timestamp

    for value in (datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
                  datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
                  datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=6)))):
        assert timestamp(value).ToDatetime(tzinfo=UTC) == value


async def test_log_lines_carry_the_calls_method_organization_caller_request_id_and_duration(probe, member):
    """One JSON line per failed call (and per call at DEBUG), with the call's context bound once."""
    import io
    import logging

    from libs.server.logs import configure_logging

    org, token = member
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("probe", "DEBUG", stream=buffer)
    try:
        metadata = [("authorization", f"Bearer {token}"), ("x-request-id", "req-42")]
        with pytest.raises(aio.AioRpcError):
            await probe.unary_unary(f"/{SERVICE}/BadInput")(b"", metadata=metadata, timeout=5)
        await probe.unary_unary(f"/{SERVICE}/WhoAmI")(b"", metadata=metadata, timeout=5)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if '"soulkg.rpc"' in line]
    failed = next(line for line in lines if line["method"].endswith("/BadInput"))
    assert failed["code"] == "INVALID_ARGUMENT" and failed["request_id"] == "req-42"
    assert failed["organization"] == str(org) and failed["caller"] and failed["duration_ms"] >= 0
    assert failed["service"] == "probe" and failed["level"] == "info"
    ok = next(line for line in lines if line["method"].endswith("/WhoAmI"))
    assert ok["code"] == "OK" and ok["level"] == "debug" and ok["organization"] == str(org)
