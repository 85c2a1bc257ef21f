"""agents' workloads for `make bench` (issue 12), to be filled in with the agents service:

- ResolvePrompt, cached (a client already assigned) and first assignment (a new client each
  call), each next to its ceiling: the same statements through asyncpg in the service's
  transaction (bench.loadgen.begin_sql gives the first round trip the service makes);
- GetExperimentResults over an experiment with 100,000 assigned clients, next to its SQL.

How: make the data in `setup` (COPY through `bench.ds.urls.admin`, kept across runs as
bench/dataset.py does), start the server with `bench.service("agents", ...)` (crm's address in
SOULKG_SERVICE_ADDRESSES when it calls crm: `bench.service("crm")` is the run's crm), return
one Workload per name the COMPARES use: `Grpc(port, method, request bytes, token)` for a fixed
request (h2load), `Python("bench.agents_bench:<factory>", spec)` for anything else, with the
factory returning a bench.loadgen.Load (see bench/crm_bench.py's write workloads). While
COMPARES is empty the run skips this suite.
"""

from __future__ import annotations

import importlib.util

from bench.harness import Bench, Compare, Suite, Unavailable, Workload

COMPARES: tuple[Compare, ...] = ()


def setup(bench: Bench) -> list[Workload]:
    if importlib.util.find_spec("services.agents") is None:
        raise Unavailable("services/agents is not on this branch")
    return []


SUITE = Suite("agents", COMPARES, setup)
