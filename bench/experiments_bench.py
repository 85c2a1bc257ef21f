"""Where GetClient's time goes: each experiment next to the same server without it, in
interleaved rounds like every workload. Not part of `make bench` (it adds servers and
minutes); run it with

    python -m bench.run --suite experiments

- The transport: the bare echo server against the same echo server behind the services'
  TenancyInterceptor (token verified from a cache, rule checked, contextvars and log context
  bound: the per-call work of every service), and against gRPC server options.
- GetClient on crm (bench/crm_variant.py, which runs services/crm/server.py's server with an
  experiment patched in) against the same crm without it: GetClient in a transaction (three
  round trips, as before it read in one statement), a server option, a smaller database pool.
"""

from __future__ import annotations

from bench.crm_bench import SERVICE, _call, read_client
from bench.harness import Bench, Compare, Grpc, Suite, Workload, port_open

ECHO = "echo"
ECHO_MODES = {
    "echo + an empty aio interceptor": "empty-interceptor",
    "echo + TenancyInterceptor": "interceptor",
    "echo, TenancyInterceptor's work, handler wrapped": "wrapped",
    "echo + TenancyInterceptor without log context": "interceptor-no-log-context",
}
ECHO_OPTIONS = {
    "echo, max_concurrent_streams=16": "grpc.max_concurrent_streams=16",
    "echo, HTTP/2 BDP probe off": "grpc.http2.bdp_probe=0",
    "echo, optimization_target=throughput": "grpc.optimization_target=throughput",
}
BASE = "GetClient, crm (experiments' baseline)"
VARIANTS = {  # name: (crm_variant experiments, extra environment)
    "GetClient in a transaction (before single_read)": (["transaction-get"], {}),
    "GetClient, max_concurrent_streams=16": (["option:grpc.max_concurrent_streams=16"], {}),
    "GetClient, HTTP/2 BDP probe off": (["option:grpc.http2.bdp_probe=0"], {}),
    "GetClient, database pool of 4": ([], {"SOULKG_DB_POOL_SIZE": "4"}),
    "GetClient, interceptor without log context": (["no-log-context"], {}),
}
LIST_BASE = "ListClients first page, crm (experiments' baseline)"
LIST_ONE = "ListClients first page in one statement"

# Each experiment twice: its throughput, and its server's CPU per call (lower is better), which
# other work on a shared machine moves much less.
COMPARES = tuple(
    Compare(name, base, metric, note=note)
    for names, base, note in ((ECHO_MODES, ECHO, "(per-call work)"), (ECHO_OPTIONS, ECHO, "(server option)"),
                              (VARIANTS, BASE, "(experiment vs none)"), ((LIST_ONE,), LIST_BASE, "(experiment vs none)"))
    for name in names for metric in ("rps", "server_us"))


def setup(bench: Bench) -> list[Workload]:
    from soulkg.crm.v1 import crm_pb2

    token = bench.token()
    request = crm_pb2.GetClientRequest(id=read_client(bench)).SerializeToString()

    def crm(label: str, experiments: list[str], env: dict) -> int:
        return bench.service("crm", label=label, module="bench.crm_variant", **env) if not experiments else \
            bench.start(label, ["-m", "bench.crm_variant", *experiments],
                        env={**bench.service_env("crm"), "SOULKG_PORT": "{port}", **env})

    base = bench.service("crm", label="crm, experiments' baseline", module="bench.crm_variant")
    size = len(_call(base, SERVICE + "GetClient", request, token))

    def echo(label: str, *extra: str) -> int:
        return bench.start(label, ["-m", "bench.echo_server", str(size), "{port}", *extra], ready=port_open)

    workloads = [Workload(ECHO, Grpc(echo("echo, experiments"), "/bench.Echo/Call", request, token))]
    workloads += [Workload(name, Grpc(echo(name, "--mode", mode, "--keys", str(bench.keys)), "/bench.Echo/Call",
                                      request, token)) for name, mode in ECHO_MODES.items()]
    workloads += [Workload(name, Grpc(echo(name, "--option", option), "/bench.Echo/Call", request, token))
                  for name, option in ECHO_OPTIONS.items()]
    workloads.append(Workload(BASE, Grpc(base, SERVICE + "GetClient", request, token)))
    workloads += [Workload(name, Grpc(crm(name, experiments, env), SERVICE + "GetClient", request, token))
                  for name, (experiments, env) in VARIANTS.items()]
    first_page = crm_pb2.ListClientsRequest(page_size=50).SerializeToString()
    workloads += [Workload(LIST_BASE, Grpc(base, SERVICE + "ListClients", first_page, token)),
                  Workload(LIST_ONE, Grpc(crm(LIST_ONE, ["one-statement-list"], {}), SERVICE + "ListClients",
                                          first_page, token))]
    return workloads


SUITE = Suite("experiments", COMPARES, setup, optional=True)
