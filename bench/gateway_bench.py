"""The gateway's workload for `make bench`: GetClient through the gateway (HTTP/1.1 + JSON) next
to the same call over gRPC (crm's "GetClient": the gateway makes exactly that call, so it is
the ceiling), measured in the same interleaved group as crm's GetClient and its ceilings.

Load generator: h2load --h1 (one request in flight per connection, as many connections as
requests in flight, no pipelining), else bench/loadgen.py's raw keep-alive HTTP/1.1 client.
Not measured while services/gateway is not on the branch.
"""

from __future__ import annotations

import importlib.util
import json
import time
import urllib.request

from bench.crm_bench import GET, read_client
from bench.harness import Bench, Compare, HttpGet, Suite, Unavailable, Workload

VIA_GATEWAY = "GetClient via gateway (HTTP/JSON)"
COMPARES = (Compare(VIA_GATEWAY, GET, note="(HTTP/JSON vs gRPC)", label="gateway vs gRPC"),)


def _answers(port: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def setup(bench: Bench) -> list[Workload]:
    if importlib.util.find_spec("services.gateway") is None:
        raise Unavailable("services/gateway is not on this branch")
    crm = bench.service("crm")
    port = bench.start("gateway", ["-m", "services.gateway.server"], ready=_answers, env={
        **bench.service_env("gateway"), "SOULKG_PORT": "{port}",
        "SOULKG_SERVICE_ADDRESSES": json.dumps({"crm": f"127.0.0.1:{crm}"})})
    client_id = read_client(bench)  # the client crm's GetClient reads
    return [Workload(VIA_GATEWAY, HttpGet(port, f"/v1/clients/{client_id}", bench.token()))]


SUITE = Suite("gateway", COMPARES, setup, needs=("crm",))
