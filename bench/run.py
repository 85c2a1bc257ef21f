"""`make bench`: every workload next to the ceiling it cannot beat, measured in one run.

Sets up its own data (bench/dataset.py: 1,000,000 clients, COPY-loaded, kept in .data/bench),
starts the servers it needs as separate processes (crm as its own role, crm as a BYPASSRLS
role with exactly crm's grants, crm with 2 workers, a bare echo server), drives each workload
with the separate-process load generator (bench/loadgen.py), prints one table and writes it
as JSON to bench/results/latest.json.

    python -m bench.run [--quick] [--concurrency N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from statistics import median

import asyncpg
import grpc

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "gen" / "python")]

from bench import catalog_bench, dataset, gateway_bench, messaging_bench  # noqa: E402
from libs.pagination import PageTokenCodec  # noqa: E402
from libs.server.probe import wait_serving  # noqa: E402
from libs.tenancy.tokens import generate_key_pair, load_signer  # noqa: E402
from services.crm.repository import CLIENT_COLUMNS, IN_ORG  # noqa: E402
from soulkg.crm.v1 import crm_pb2  # noqa: E402

DATA = REPO / ".data" / "bench"
RESULTS = REPO / "bench" / "results"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "gen" / "python")]),
       "SOULKG_LOG_LEVEL": "WARNING"}
GET_SQL = f"SELECT {CLIENT_COLUMNS} FROM clients WHERE {IN_ORG} AND id = $1"
OFFSET_SQL = f"SELECT {CLIENT_COLUMNS} FROM clients WHERE {IN_ORG} ORDER BY created_at DESC, id DESC LIMIT 51 OFFSET $1"
KEYSET_FIRST_SQL = f"SELECT {CLIENT_COLUMNS} FROM clients WHERE {IN_ORG} ORDER BY created_at DESC, id DESC LIMIT 51"
KEYSET_DEEP_SQL = (f"SELECT {CLIENT_COLUMNS} FROM clients WHERE {IN_ORG} AND (created_at, id) < ($1, $2) "
                   "ORDER BY created_at DESC, id DESC LIMIT 51")
DEEP_POSITION = 50_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Servers:
    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict, port: int, health: bool = True) -> int:
        self.processes.append(subprocess.Popen([sys.executable, *args], cwd=REPO, env=env))
        if not health:
            time.sleep(1.0)
        elif not wait_serving(port):
            raise RuntimeError(f"server on {port} did not become healthy")
        return port

    def stop(self) -> None:
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_load(spec: dict) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.loadgen", json.dumps(spec)], cwd=REPO, env=ENV,
                         capture_output=True, text=True, check=True)
    rounds = json.loads(out.stdout.strip().splitlines()[-1])
    errors = rounds.pop()["errors"]
    return {"rps": median(r["rps"] for r in rounds), "p50_ms": median(r["p50_ms"] for r in rounds),
            "p99_ms": median(r["p99_ms"] for r in rounds), "errors": errors, "rounds": rounds,
            "generator": "python grpc.aio / asyncpg"}


def h2load_available() -> bool:
    import shutil

    return shutil.which("h2load") is not None


def run_h2load(port: int, method: str, request: bytes, token: str | None, concurrency: int, timing: dict) -> dict:
    """A fixed gRPC unary request from h2load (C, HTTP/2): the load generator that leaves the
    server the most CPU. gRPC framing is written by hand (flag byte + 4-byte length); h2load
    does not read grpc-status trailers, so each workload's request is checked once first."""
    import re
    import tempfile

    connections = 4
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body"
        body.write_bytes(b"\x00" + len(request).to_bytes(4, "big") + request)
        headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
        if token:
            headers += ["-H", f"authorization: Bearer {token}"]
        rounds = []
        for index in range(timing["rounds"]):
            log = Path(tmp) / f"log{index}"
            out = subprocess.run(
                ["h2load", "-c", str(connections), "-m", str(max(1, concurrency // connections)), "-t", "1",
                 "-D", str(max(1, round(timing["seconds"]))), f"--warm-up-time={max(1, round(timing['warmup']))}",
                 "--data", str(body),
                 f"--log-file={log}", *headers, f"http://127.0.0.1:{port}{method}"],
                capture_output=True, text=True, check=True).stdout
            rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
            failed = int(re.search(r"(\d+) failed", out).group(1))
            latencies = sorted(int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line)
            rounds.append({"rps": rps, "p50_ms": latencies[len(latencies) // 2],
                           "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
                           "errors": failed})
    return {"rps": median(r["rps"] for r in rounds), "p50_ms": median(r["p50_ms"] for r in rounds),
            "p99_ms": median(r["p99_ms"] for r in rounds), "errors": sum(r["errors"] for r in rounds),
            "rounds": rounds, "generator": "h2load"}


def check_call(port: int, method: str, request: bytes, token: str | None) -> bytes:
    """One call through grpcio: the workload's request must succeed before it is measured."""
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return channel.unary_unary(method)(request, metadata=metadata, timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short rounds (a smoke run)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--python-loadgen", action="store_true",
                        help="drive the read workloads with the Python generator even when h2load is installed")
    args = parser.parse_args()
    timing = {"warmup": 0.5, "rounds": 3, "seconds": 1.0} if args.quick else {"warmup": 1.0, "rounds": 3, "seconds": 3.0}
    concurrency = args.concurrency

    DATA.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    ds = dataset.prepare(DATA)
    print(f"dataset ready in {time.monotonic() - started:.0f}s", flush=True)
    keys = DATA / "keys"
    if not (keys / "current").exists():
        generate_key_pair(keys)
    token, _ = load_signer(keys).issue(organization_id=ds.big_org, subject=str(ds.big_org_admin), role="ADMIN",
                                       ttl_seconds=3600)
    page_secret = secrets.token_urlsafe(32)
    org = str(ds.big_org)
    crm_url = ds.urls.service("crm")  # crm's own role

    # Request bodies and the deep page token (position 50,000 of 100,000, newest first).
    import asyncio

    async def pick():
        conn = await asyncpg.connect(ds.urls.admin)
        try:
            ids = [r["id"] for r in await conn.fetch(
                "SELECT id FROM clients WHERE organization_id = $1 ORDER BY id LIMIT $2", ds.big_org, concurrency + 1)]
            deep = await conn.fetchrow(
                "SELECT id, created_at FROM clients WHERE organization_id = $1 ORDER BY created_at DESC, id DESC "
                "OFFSET $2 LIMIT 1", ds.big_org, DEEP_POSITION)
            return ids, deep
        finally:
            await conn.close()

    ids, deep = asyncio.run(pick())
    codec = PageTokenCodec(page_secret.encode())
    deep_token = codec.encode(ds.big_org, codec.fingerprint("clients", "", "create_time desc"),
                              [deep["created_at"].isoformat(), str(deep["id"])])
    get_request = crm_pb2.GetClientRequest(id=str(ids[0])).SerializeToString().hex()
    list_first = crm_pb2.ListClientsRequest(page_size=50).SerializeToString().hex()
    list_deep = crm_pb2.ListClientsRequest(page_size=50, page_token=deep_token).SerializeToString().hex()

    servers = Servers()
    table: list[dict] = []
    try:
        crm_env = {**ENV, "SOULKG_KEYS_DIR": str(keys), "SOULKG_PAGE_TOKEN_SECRET": page_secret,
                   "SOULKG_DB_POOL_SIZE": "10"}
        crm = servers.start(["-m", "services.crm.server"], {**crm_env, "SOULKG_DATABASE_URL": crm_url,
                                                             "SOULKG_PORT": str(port := free_port())}, port)
        crm_bypass = servers.start(["-m", "services.crm.server"], {
            **crm_env, "SOULKG_DATABASE_URL": ds.bypass_url, "SOULKG_PORT": str(port := free_port())}, port)
        crm_two = servers.start(["-m", "services.crm.server"], {
            **crm_env, "SOULKG_DATABASE_URL": crm_url, "SOULKG_WORKERS": "2",
            "SOULKG_PORT": str(port := free_port())}, port)
        with grpc.insecure_channel(f"127.0.0.1:{crm}") as channel:
            reply = channel.unary_unary("/soulkg.crm.v1.ClientService/GetClient")(
                bytes.fromhex(get_request), metadata=[("authorization", f"Bearer {token}")])
        echo = servers.start(["-m", "bench.echo_server", str(port := free_port()), str(len(reply))], ENV, port,
                             health=False)

        def grpc_spec(port: int, method: str, kind: str = "fixed", **extra) -> dict:
            return {"via": "grpc", "target": f"127.0.0.1:{port}", "method": method, "kind": kind, "token": token,
                    "concurrency": concurrency, **timing, **extra}

        def sql_spec(kind: str = "query", dsn: str = crm_url, **extra) -> dict:
            return {"via": "sql", "dsn": dsn, "org": org, "pool": 10, "kind": kind, "concurrency": concurrency,
                    **timing, **extra}

        get_method = "/soulkg.crm.v1.ClientService/GetClient"
        list_method = "/soulkg.crm.v1.ClientService/ListClients"
        measure = {}

        use_h2load = h2load_available() and not args.python_loadgen

        def step(name: str, spec: dict) -> dict:
            if use_h2load and spec["via"] == "grpc" and spec["kind"] == "fixed":
                port = int(spec["target"].rsplit(":", 1)[1])
                request = bytes.fromhex(spec["request_hex"])
                if not spec["method"].startswith("/bench."):
                    check_call(port, spec["method"], request, spec["token"])
                result = run_h2load(port, spec["method"], request, spec["token"], spec["concurrency"], timing)
            else:
                result = run_load(spec)
            measure[name] = result
            print(f"  {name:<38} {result['rps']:>9.0f} req/s  p50 {result['p50_ms']:7.2f} ms  "
                  f"p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}", flush=True)
            return result

        print(f"workloads (closed loop, {concurrency} in flight, median of {timing['rounds']} rounds):", flush=True)
        step("transport ceiling (echo)", grpc_spec(echo, "/bench.Echo/Call", request_hex=get_request))
        step("GetClient", grpc_spec(crm, get_method, request_hex=get_request))
        measure.update(gateway_bench.workloads(servers, ENV, crm, free_port(), str(ids[0]), token, concurrency,
                                               timing, use_h2load))
        step("GetClient SQL via asyncpg", sql_spec(sql=GET_SQL, args=[["uuid", str(ids[0])]]))
        step("ListClients first page", grpc_spec(crm, list_method, request_hex=list_first))
        step("ListClients page at 50,000", grpc_spec(crm, list_method, request_hex=list_deep))
        step("keyset SQL first page", sql_spec(sql=KEYSET_FIRST_SQL))
        step("keyset SQL page at 50,000", sql_spec(sql=KEYSET_DEEP_SQL, args=[
            ["ts", deep["created_at"].isoformat()], ["uuid", str(deep["id"])]]))
        step("OFFSET SQL first page", sql_spec(sql=OFFSET_SQL, args=[["int", 0]]))
        step("OFFSET SQL page at 50,000", sql_spec(sql=OFFSET_SQL, args=[["int", DEEP_POSITION]]))
        step("GetClient, BYPASSRLS role", grpc_spec(crm_bypass, get_method, request_hex=get_request))
        step("ListClients first page, BYPASSRLS role", grpc_spec(crm_bypass, list_method, request_hex=list_first))
        step("CreateClient", grpc_spec(crm, "/soulkg.crm.v1.ClientService/CreateClient", kind="create_client"))
        step("CreateClient SQL via asyncpg", sql_spec(kind="create_client"))
        client_ids = [str(i) for i in ids[1:concurrency + 1]]
        step("ChangeClientStatus", grpc_spec(crm, "/soulkg.crm.v1.ClientService/ChangeClientStatus",
                                             kind="change_status", client_ids=client_ids))
        step("ChangeClientStatus SQL via asyncpg", sql_spec(kind="change_status", client_ids=client_ids))
        step("GetClient, crm with 2 workers", grpc_spec(crm_two, get_method, request_hex=get_request))
        catalog_bench.run(step, servers, ds, crm_env, token, timing, concurrency, DATA)
        # messaging's workloads (bench/messaging_bench.py), with crm and messaging servers of their own
        measure.update(messaging_bench.run(ds, keys, servers, timing, concurrency, ENV))
    finally:
        servers.stop()
        ds.server.stop()

    def row(workload, ceiling, metric, goal, compare):
        w, c = measure[workload], measure[ceiling]
        ratio = w[metric] / c[metric] if c[metric] else float("nan")
        table.append({"workload": workload, "rps": w["rps"], "p50_ms": w["p50_ms"], "p99_ms": w["p99_ms"],
                      "ceiling": ceiling, "ceiling_rps": c["rps"], "ceiling_p50_ms": c["p50_ms"],
                      "ratio": ratio, "ratio_of": metric, "goal": goal, "met": compare(ratio)})

    row("GetClient", "transport ceiling (echo)", "rps", ">= 0.6", lambda r: r >= 0.6)
    row("GetClient", "GetClient SQL via asyncpg", "rps", "(database path)", lambda r: None)
    row("GetClient via gateway (HTTP/JSON)", "GetClient", "rps", "(HTTP/JSON vs gRPC)", lambda r: None)
    row("ListClients page at 50,000", "ListClients first page", "p50_ms", "<= 1.3 (latency)", lambda r: r <= 1.3)
    row("keyset SQL page at 50,000", "keyset SQL first page", "p50_ms", "(latency)", lambda r: None)
    row("OFFSET SQL page at 50,000", "OFFSET SQL first page", "p50_ms", "(latency; why keyset)", lambda r: None)
    row("GetClient", "GetClient, BYPASSRLS role", "rps", ">= 0.95", lambda r: r >= 0.95)
    row("ListClients first page", "ListClients first page, BYPASSRLS role", "rps", ">= 0.95", lambda r: r >= 0.95)
    row("CreateClient", "CreateClient SQL via asyncpg", "rps", "(write path)", lambda r: None)
    row("ChangeClientStatus", "ChangeClientStatus SQL via asyncpg", "rps", "(write path)", lambda r: None)
    row("GetClient, crm with 2 workers", "GetClient", "rps", ">= 1.6 (needs a free core)", lambda r: r >= 1.6)
    for catalog_row in catalog_bench.ROWS:
        row(*catalog_row)
    table.extend(messaging_bench.rows(measure))

    header = f"{'workload':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  {'vs ceiling':<38} {'ceiling':>9} {'ratio':>6}  goal"
    print("\n" + header + "\n" + "-" * len(header))
    for r in table:
        ceiling_figure = f"{r['ceiling_rps']:.0f}/s" if r["ratio_of"] == "rps" else f"{r['ceiling_p50_ms']:.2f}ms"
        met = {True: "ok", False: "MISSED", None: ""}[r["met"]]
        print(f"{r['workload']:<34} {r['rps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}  {r['ceiling']:<38} "
              f"{ceiling_figure:>9} {r['ratio']:>6.2f}  {r['goal']} {met}")
    RESULTS.mkdir(exist_ok=True)
    report = {"date": datetime.now().isoformat(timespec="seconds"), "cores": os.cpu_count(),
              "read_generator": "h2load" if use_h2load else "python",
              "machine": platform.machine(), "python": platform.python_version(), "concurrency": concurrency,
              "timing": timing, "workloads": measure, "table": table}
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten: bench/results/latest.json ({os.cpu_count()} cores; reads driven by "
          f"{'h2load' if use_h2load else 'the Python generator'}, writes and SQL by the Python generator, "
          "all on the same machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
