"""The one service registry: every fact about a service that more than one place needs.

`make run`, docker-compose (generated from this file), health probes, the test fixtures,
the benchmarks, service-to-service clients and the gateway all read it. Adding a service is
one entry here plus its package `services/<name>/`.

Which methods are public (no token) is not repeated here: it is the `PUBLIC` rows of the
service's authorization table (`services/<name>/policies.py`, see `public_methods`).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceEntry:
    name: str  # "crm"
    port: int  # default gRPC port (DESIGN.md section 1)
    proto_package: str  # "soulkg.crm.v1"
    db_role: str  # the PostgreSQL role this service connects as
    tables: tuple[str, ...]  # the tables it owns: its role may write these and no others
    # (and append to the shared audit log, `APPEND_ONLY_SHARED`)

    @property
    def module(self) -> str:
        """What `python -m` runs for this service."""
        return f"services.{self.name}.server"

    @property
    def exists(self) -> bool:
        """Whether the service's package has been written yet (make run starts only those)."""
        return importlib.util.find_spec(f"services.{self.name}") is not None

    @property
    def error_domain(self) -> str:
        """`ErrorInfo.domain` of the errors this service returns (one per service)."""
        return f"{self.name}.soulkg.dev"


SERVICES: tuple[ServiceEntry, ...] = (
    # audit_events: identity's, as it alone reads it; every service's role appends to it
    # (libs/audit.py). auth_limits: reached through SECURITY DEFINER functions only.
    ServiceEntry("identity", 50051, "soulkg.identity.v1", "soulkg_identity",
                 ("organizations", "users", "refresh_tokens", "service_assertions", "auth_limits",
                  "audit_events")),
    ServiceEntry("crm", 50052, "soulkg.crm.v1", "soulkg_crm", ("clients", "client_status_history")),
    ServiceEntry("messaging", 50053, "soulkg.messaging.v1", "soulkg_messaging",
                 ("conversations", "messages", "whatsapp_sessions", "conversation_handoffs")),
    ServiceEntry("catalog", 50054, "soulkg.catalog.v1", "soulkg_catalog",
                 ("partners", "products", "tours", "client_products", "client_tours")),
    ServiceEntry("agents", 50055, "soulkg.agents.v1", "soulkg_agents",
                 ("agent_configurations", "prompt_variants", "experiments", "experiment_variants",
                  "dialogue_analysis", "experiment_assignments", "agent_revisions")),
)
GATEWAY_PORT = 8080
# Tables every service's role appends to (INSERT only) although one service owns them.
APPEND_ONLY_SHARED = ("audit_events",)

BY_NAME = {entry.name: entry for entry in SERVICES}


def service(name: str) -> ServiceEntry:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no service {name!r} in libs/registry.py") from None


def existing() -> list[ServiceEntry]:
    """The registered services whose packages exist, in registry order."""
    return [entry for entry in SERVICES if entry.exists]


def owner_of(table: str) -> ServiceEntry:
    for entry in SERVICES:
        if table in entry.tables:
            return entry
    raise KeyError(f"no service owns table {table!r}")


def policies(name: str):
    """The service's authorization table (`services/<name>/policies.py: POLICIES`)."""
    return importlib.import_module(f"services.{name}.policies").POLICIES
