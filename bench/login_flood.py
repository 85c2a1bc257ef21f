"""A flood of wrong logins against one account must leave other accounts' logins within 2× of
their normal latency (README "Brute-force limits").

    python -m bench.login_flood [--rounds 3] [--seconds 4] [--users 2] [--flood 32]

Runs on its own: a throwaway PostgreSQL (embedded, fast settings, like the tests), migrated;
identity as its own process and its own role, trusting 127.0.0.0/8 as a proxy so that each
simulated client speaks from an address of its own (`x-forwarded-for`). It signs up the
accounts, then measures the other accounts' login latency alone and while separate processes
flood one victim account with wrong passwords, each attempt from a new address (so that only
the per-account limit can stop them, the hardest case); the two phases alternate for a few
rounds, so that other work on the machine weighs on both alike. Prints p50 and p99 of
both phases, their ratios, and what the flood got (answered failures vs refusals).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "gen" / "python")]

from grpc import aio  # noqa: E402

from libs.db import migrate  # noqa: E402
from libs.db.embedded import EmbeddedPostgres  # noqa: E402
from libs.db.provision import provision, service_roles  # noqa: E402
from libs.server.probe import wait_serving  # noqa: E402
from libs.tenancy.tokens import generate_key_pair  # noqa: E402
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc  # noqa: E402

PASSWORD = "correct horse battery"
GOAL = 2.0  # other accounts' latency during the flood, at most this many times normal


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def random_address() -> str:
    return f"2001:db8:{secrets.randbelow(2**16):x}:{secrets.randbelow(2**16):x}::1"


async def sign_up(target: str, label: str) -> tuple[str, str]:
    async with aio.insecure_channel(target) as channel:
        slug = f"{label}-{secrets.token_hex(4)}"
        email = f"user@{slug}.example.com"
        await identity_pb2_grpc.AuthServiceStub(channel).SignUp(identity_pb2.SignUpRequest(
            organization_name=label, organization_slug=slug, email=email, password=PASSWORD),
            metadata=[("x-forwarded-for", random_address())])
        return slug, email


async def measure_logins(target: str, accounts: list[tuple[str, str]], seconds: float) -> list[float]:
    """Each account logs in again and again (one login in flight each), from its own address;
    the latencies, in milliseconds."""
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def user(slug: str, email: str, stub) -> None:
        metadata = [("x-forwarded-for", random_address())]
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await stub.Login(identity_pb2.LoginRequest(organization_slug=slug, email=email, password=PASSWORD),
                             metadata=metadata)
            latencies.append((time.perf_counter() - started) * 1000)

    async with aio.insecure_channel(target) as channel:
        stub = identity_pb2_grpc.AuthServiceStub(channel)
        await asyncio.gather(*(user(slug, email, stub) for slug, email in accounts))
    return latencies


async def _flood(target: str, slug: str, email: str, concurrency: int, go, stop) -> dict:
    """Wrong passwords against one account, each from a new address, while `go` is set.
    Requests are encoded beforehand and sent as raw bytes (like bench/loadgen.py), so the
    client spends its CPU on sending, not on protobuf."""
    counts: dict[str, int] = {}
    requests = [(identity_pb2.LoginRequest(organization_slug=slug, email=email,
                                           password=secrets.token_hex(8)).SerializeToString(),
                 (("x-forwarded-for", random_address()),)) for _ in range(1024)]

    async def attacker(call, offset: int) -> None:
        sent = offset
        while not stop.is_set():
            if not go.is_set():
                await asyncio.sleep(0.01)
                continue
            body, metadata = requests[sent % len(requests)]
            sent += 1
            try:
                await call(body, metadata=metadata)
                outcome = "OK"
            except aio.AioRpcError as error:
                outcome = error.code().name
            counts[outcome] = counts.get(outcome, 0) + 1

    async with aio.insecure_channel(target) as channel:
        call = channel.unary_unary("/soulkg.identity.v1.AuthService/Login")
        await asyncio.gather(*(attacker(call, index * 37) for index in range(concurrency)))
    return counts


def flood_process(target: str, slug: str, email: str, concurrency: int, go, stop, results) -> None:
    results.put(asyncio.run(_flood(target, slug, email, concurrency, go, stop)))


def h2load_flood(port: int, slug: str, email: str, concurrency: int, seconds: float, workdir: Path):
    """The same flood from h2load (C, HTTP/2; as bench/run.py uses it), which leaves the
    server the most CPU: one fixed wrong login (one address), `concurrency` in flight. gRPC
    framing by hand; h2load does not read grpc-status, so outcomes are not counted."""
    request = identity_pb2.LoginRequest(organization_slug=slug, email=email, password="not the password").SerializeToString()
    body = workdir / "flood-body"
    body.write_bytes(b"\x00" + len(request).to_bytes(4, "big") + request)
    connections = 4
    return subprocess.Popen(
        ["h2load", "-c", str(connections), "-m", str(max(1, concurrency // connections)), "-t", "1",
         "-D", str(max(1, round(seconds))), "--data", str(body), "-H", "content-type: application/grpc",
         "-H", "te: trailers", "-H", f"x-forwarded-for: {random_address()}",
         f"http://127.0.0.1:{port}/soulkg.identity.v1.AuthService/Login"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each phase of a round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (alone, under the flood)")
    parser.add_argument("--users", type=int, default=2, help="other accounts logging in, one login in flight each")
    parser.add_argument("--flood", type=int, default=32, help="wrong logins in flight against the victim")
    parser.add_argument("--flood-client", choices=("h2load", "python"),
                        default="h2load" if shutil.which("h2load") else "python",
                        help="what sends the flood: h2load (C, the least client CPU; the default when installed) "
                             "or Python processes, each attempt from a new address")
    parser.add_argument("--flood-processes", type=int, default=2, help="Python processes sending the flood")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="soulkg-login-flood-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg", durable=False).start()
        identity = None
        try:
            urls = provision(server.admin_url, "soulkg_flood", secrets.token_urlsafe(16),
                             {role: secrets.token_urlsafe(16) for role in service_roles()})
            migrate.upgrade(urls.owner)
            keys = Path(tmp) / "keys"
            generate_key_pair(keys)
            port = free_port()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "gen" / "python")]),
                   "SOULKG_LOG_LEVEL": "WARNING", "SOULKG_DATABASE_URL": urls.service("identity"),
                   "SOULKG_KEYS_DIR": str(keys), "SOULKG_PORT": str(port),
                   "SOULKG_TRUSTED_PROXIES": json.dumps(["127.0.0.0/8"])}
            identity = subprocess.Popen([sys.executable, "-m", "services.identity.server"], cwd=REPO, env=env)
            if not wait_serving(port):
                raise RuntimeError("identity did not become healthy")
            target = f"127.0.0.1:{port}"

            async def accounts():
                return await asyncio.gather(*(sign_up(target, f"user{i}") for i in range(args.users + 1)))

            victim, *others = asyncio.run(accounts())
            use_h2load = args.flood_client == "h2load"
            if not use_h2load:
                context = multiprocessing.get_context("spawn")
                go, stop, results = context.Event(), context.Event(), context.Queue()
                per_process = max(1, args.flood // args.flood_processes)
                floods = [context.Process(target=flood_process,
                                          args=(target, *victim, per_process, go, stop, results))
                          for _ in range(args.flood_processes)]
                for process in floods:
                    process.start()
            asyncio.run(measure_logins(target, others, 1.0))  # warm-up
            print(f"{len(others)} accounts logging in; {args.rounds} rounds of {args.seconds:.0f} s alone and "
                  f"{args.seconds:.0f} s under the flood, alternating", flush=True)
            normal: list[float] = []
            flooded: list[float] = []
            counts: dict[str, int] = {}
            flood_rates: list[float] = []
            for _ in range(args.rounds):
                normal += asyncio.run(measure_logins(target, others, args.seconds))
                if use_h2load:
                    h2load = h2load_flood(port, *victim, args.flood, args.seconds + 1, Path(tmp))
                else:
                    go.set()
                time.sleep(0.5)  # the flood is in full swing before measuring
                flooded += asyncio.run(measure_logins(target, others, args.seconds))
                if use_h2load:
                    output = h2load.communicate(timeout=60)[0]
                    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output)
                    flood_rates.append(float(rate.group(1)) if rate else float("nan"))
                else:
                    go.clear()
                time.sleep(0.2)
            if not use_h2load:
                stop.set()
                for process in floods:
                    for code, n in results.get(timeout=60).items():
                        counts[code] = counts.get(code, 0) + n
                    process.join()
        finally:
            if identity is not None:
                identity.terminate()
                identity.wait(timeout=15)
            server.stop()

    if flood_rates:
        print(f"flood: {args.flood} wrong logins in flight from h2load against one account: "
              f"{sum(flood_rates) / len(flood_rates):.0f} attempts/s")
    else:
        flood_seconds = args.rounds * (args.seconds + 0.5)
        print(f"flood: {args.flood} wrong logins in flight from {args.flood_processes} Python processes, a new "
              f"address each, against one account: {sum(counts.values()) / flood_seconds:.0f} attempts/s; "
              f"outcomes {counts}")
    rows = [("normal", normal), ("during the flood", flooded)]
    print(f"\n{'other accounts login':<24} {'logins':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in rows:
        print(f"{name:<24} {len(values):>7} {percentile(values, 0.5):>8.1f} {percentile(values, 0.99):>8.1f}")
    p50 = percentile(flooded, 0.5) / percentile(normal, 0.5)
    p99 = percentile(flooded, 0.99) / percentile(normal, 0.99)
    met = p50 <= GOAL and p99 <= GOAL
    print(f"{'ratio (flood / normal)':<24} {'':>7} {p50:>8.2f} {p99:>8.2f}   goal <= {GOAL:.0f}x: "
          f"{'ok' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
