"""A login flood for `make bench` (issue 9): while many workers send wrong passwords for one
account, how slow are the logins of the other accounts? Goal: within 2x of their latency
with no flood.

- "Login, other accounts": LOGIN_WORKERS workers log in to 4 other organizations' admins with
  the right password (each login is one argon2 verification, ~30 ms of CPU).
- "Login, other accounts, one flooded": the same, while FLOOD_WORKERS workers in the same
  generator send wrong passwords for the flooded account (their answers are not measured;
  their codes go to the generator's log).

identity trusts the loopback as a proxy here, so each request names its client address in
`x-forwarded-for` (as bench/login_flood.py does): each measured worker keeps one address, and
every attempt of the flood comes from a new one, so that only the per-account limit can stop
it (the hardest case for the other accounts).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections import Counter

from bench.harness import Bench, Compare, Python, Suite, Workload, at_most
from bench.loadgen import Load, close_channels, closed_loop, error_code, grpc_channels

LOGIN = "/soulkg.identity.v1.AuthService/Login"
ACCOUNTS = 5  # the first is flooded
PASSWORD = "bench-login-flood-password-1"
LOGIN_WORKERS = 4
FLOOD_WORKERS = 16
NORMAL, FLOODED = "Login, other accounts", "Login, other accounts, one flooded"
COMPARES = (Compare(FLOODED, NORMAL, "p50_ms", at_most(2.0, "(latency)"), label="login under a flood"),)


def _slug(i: int) -> str:
    return f"bench-login-{i}"


def _email(i: int) -> str:
    return f"admin@{_slug(i)}.example.com"


def _sign_up(port: int, admin_url: str) -> None:
    """The accounts, once: later runs find them. Each sign-up names an address of its own
    (sign-ups are rate limited per address, and identity here trusts the loopback as a proxy)."""
    import grpc

    from soulkg.identity.v1 import identity_pb2

    async def existing() -> set[str]:
        import asyncpg

        conn = await asyncpg.connect(admin_url)
        try:
            return {r[0] for r in await conn.fetch("SELECT slug FROM organizations WHERE slug = ANY($1)",
                                                   [_slug(i) for i in range(ACCOUNTS)])}
        finally:
            await conn.close()

    have = asyncio.run(existing())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        sign_up = channel.unary_unary("/soulkg.identity.v1.AuthService/SignUp",
                                      request_serializer=identity_pb2.SignUpRequest.SerializeToString)
        for i in range(ACCOUNTS):
            if _slug(i) not in have:
                sign_up(identity_pb2.SignUpRequest(organization_name=f"Bench login {i}", organization_slug=_slug(i),
                                                   email=_email(i), password=PASSWORD),
                        metadata=(("x-forwarded-for", random_address()),), timeout=10)


def random_address() -> str:
    return f"2001:db8:{secrets.randbelow(2**16):x}:{secrets.randbelow(2**16):x}::1"


def setup(bench: Bench) -> list[Workload]:
    port = bench.service("identity", label="identity, loopback trusted as a proxy",
                         SOULKG_TRUSTED_PROXIES=json.dumps(["127.0.0.0/8"]))
    _sign_up(port, bench.ds.urls.admin)
    spec = {"target": f"127.0.0.1:{port}"}
    # A login takes tens of milliseconds: longer rounds, for enough of them in each.
    return [Workload(NORMAL, Python(f"{__name__}:logins", spec), concurrency=LOGIN_WORKERS, seconds=1.5),
            Workload(FLOODED, Python(f"{__name__}:flooded_logins", spec), concurrency=LOGIN_WORKERS, seconds=1.5)]


SUITE = Suite("login", COMPARES, setup)


# --- the load generators ------------------------------------------------------------------------

def _requests(first: int, last: int, password: str) -> list[bytes]:
    from soulkg.identity.v1 import identity_pb2

    return [identity_pb2.LoginRequest(organization_slug=_slug(i), email=_email(i), password=password)
            .SerializeToString() for i in range(first, last)]


async def logins(spec: dict) -> Load:
    channels = grpc_channels(spec["target"])
    calls = [channel.unary_unary(LOGIN) for channel in channels]
    requests = _requests(1, ACCOUNTS, PASSWORD)
    addresses: dict[int, tuple] = {}  # one client address per worker

    async def call(i: int) -> None:
        metadata = addresses.setdefault(i, (("x-forwarded-for", random_address()),))
        await calls[i % len(calls)](requests[i % len(requests)], metadata=metadata, timeout=10)

    return Load(call=call, close=lambda: close_channels(channels))


async def flooded_logins(spec: dict) -> Load:
    measured = await logins(spec)
    channels = grpc_channels(spec["target"])
    calls = [channel.unary_unary(LOGIN) for channel in channels]
    wrong = _requests(0, 1, "not-the-password")[0]
    answers: Counter[str] = Counter()

    async def flood(i: int, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await calls[i % len(calls)](wrong, metadata=(("x-forwarded-for", random_address()),),
                                            timeout=10)
                answers["OK"] += 1
            except Exception as exc:  # noqa: BLE001 - the flood's answers are counted, not measured
                answers[error_code(exc)] += 1
                await asyncio.sleep(0)

    async def one_round(concurrency: int, warmup: float, seconds: float) -> dict:
        stop = asyncio.Event()
        flooders = [asyncio.create_task(flood(i, stop)) for i in range(FLOOD_WORKERS)]
        try:
            return await closed_loop(measured.call, concurrency, warmup, seconds)
        finally:
            stop.set()
            await asyncio.gather(*flooders)
            print(f"flood answers so far: {dict(answers)}", file=sys.stderr, flush=True)

    async def close() -> None:
        await measured.close()
        await close_channels(channels)

    return Load(round=one_round, close=close)
