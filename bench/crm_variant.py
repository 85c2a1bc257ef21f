"""crm's server with experiments applied, for bench/experiments_bench.py (never for production).

    python -m bench.crm_variant [EXPERIMENT ...]      (settings from the environment, as crm's)

Experiments, by name:
- `option:NAME=VALUE`: a gRPC server option added to the ones libs/server/bootstrap.py sets
  (e.g. `option:grpc.max_concurrent_streams=16`);
- `transaction-get`: GetClient as it was before it read through TenantDatabase.single_read():
  three round trips (BEGIN with the settings and the caller check; the SELECT; COMMIT)
  instead of one statement;
- `one-statement-list`: the same for ListClients (one SELECT per page);
- `no-log-context`: the interceptor without its per-call log context (an upper bound of
  what a cheaper log context could save; not shippable).
With none, this is crm exactly as services/crm/server.py runs it (the experiments' baseline).
"""

from __future__ import annotations

import sys
from uuid import UUID

from grpc import aio


def _transaction_get() -> None:
    """ClientsService.get as it was before it adopted single_read(): a read-only transaction,
    three round trips (BEGIN with the settings and the caller check; the SELECT; COMMIT)."""
    from libs.persistence import found
    from services.crm import repository as repo
    from services.crm.service import ClientsService

    async def get(self, client_id: UUID):
        async with self.db.transaction(readonly=True) as conn:
            client = await repo.get_client(conn, client_id)
        return found(client, "client")

    ClientsService.get = get


def _one_statement_list() -> None:
    """ClientsService.list with TenantDatabase.single_read() (one SELECT per page)."""
    from services.crm import domain
    from services.crm import repository as repo
    from services.crm.service import _TIME_ID, ClientsService

    async def list_(self, principal, request):
        field, descending, order_key = domain.parse_order_by(request.order_by)
        query = repo.compile_client_query(request.filter, field, descending)
        page = self.pager.request(principal.organization_id,
                                  query=("clients", " ".join(request.filter.split()), order_key),
                                  page_token=request.page_token, requested_size=request.page_size,
                                  key_types=_TIME_ID)
        async with self.db.single_read() as conn:
            clients = await repo.list_clients(conn, query, page)
        return self.pager.page(page, clients, key=lambda client: (getattr(client, field), client.id))

    ClientsService.list = list_


def without_log_context() -> None:
    """The interceptor without its per-call log context (no structlog binding of method,
    request id, organization and caller; no request id made): the most that making that
    context cheaper could save. An upper bound, not a shippable change."""
    from libs.errors import PermissionDenied
    from libs.tenancy import context as tenancy_context
    from libs.tenancy.interceptors import TenancyInterceptor

    def _enter(self, method, rule, context):
        tenancy_context.set_deadline(context.time_remaining())
        if rule is None:
            raise PermissionDenied("this method has no authorization policy", reason="NO_POLICY")
        principal = self._authenticate(rule, context)
        if principal is not None and not rule.admits(principal):
            raise PermissionDenied(f"this method is for: {rule.describe()}", reason="ROLE_REQUIRED")
        tenancy_context.set_principal(principal)
        tenancy_context.set_admitted_roles(rule.roles)

    TenancyInterceptor._enter = _enter


def _option(text: str) -> None:
    name, _, value = text.partition("=")
    option = (name, int(value) if value.lstrip("-").isdigit() else value)
    original = aio.server

    def server(*args, options=None, **kwargs):
        return original(*args, options=[*(options or []), option], **kwargs)

    aio.server = server


def main(experiments: list[str]) -> None:
    for experiment in experiments:
        if experiment.startswith("option:"):
            _option(experiment.removeprefix("option:"))
        elif experiment == "transaction-get":
            _transaction_get()
        elif experiment == "one-statement-list":
            _one_statement_list()
        elif experiment == "no-log-context":
            without_log_context()
        else:
            raise SystemExit(f"unknown experiment {experiment!r}")
    from libs.server.bootstrap import main as serve
    from services.crm.server import DEFINITION

    serve(DEFINITION)


if __name__ == "__main__":
    main(sys.argv[1:])
