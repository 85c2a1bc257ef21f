"""Authorization declared per method: one table per service, enforced by the interceptor.

A service's `services/<name>/policies.py` maps every RPC to a `Rule`:

    POLICIES = {
        "soulkg.crm.v1.ClientService": {
            "GetClient": ANY_USER | SERVICES("messaging", "agents"),
            "DeleteClient": ADMIN,
            ...
        },
    }

The server refuses to start when a registered method has no rule (fail closed), and
tests/test_policies.py walks every method of every descriptor. A user's role is checked
twice: against the token's claim here (cheap, rejects early), and against the user's current
row inside the request's own transaction (`TenantDatabase.transaction`), so a demoted or
deactivated user loses the power on the next call, not when the token expires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from libs.tenancy.context import PRINCIPAL_SERVICE, PRINCIPAL_USER, Principal

ROLE_ADMIN = "ADMIN"
ROLE_MANAGER = "MANAGER"


@dataclass(frozen=True)
class Rule:
    """Who may call a method: anyone (public), users with one of `roles`, service tokens
    whose service name is in `services`."""

    public: bool = False
    roles: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()

    def __or__(self, other: Rule) -> Rule:
        return Rule(self.public or other.public, self.roles | other.roles, self.services | other.services)

    def admits(self, principal: Principal | None) -> bool:
        if self.public:
            return True
        if principal is None:
            return False
        if principal.kind == PRINCIPAL_USER:
            return principal.role in self.roles
        if principal.kind == PRINCIPAL_SERVICE:
            return principal.service_name in self.services
        return False

    def describe(self) -> str:
        if self.public:
            return "public"
        parts = [f"role {' or '.join(sorted(self.roles))}"] if self.roles else []
        if self.services:
            parts.append(f"service {' or '.join(sorted(self.services))}")
        return " or ".join(parts) or "nobody"


PUBLIC = Rule(public=True)
ADMIN = Rule(roles=frozenset({ROLE_ADMIN}))
ANY_USER = Rule(roles=frozenset({ROLE_ADMIN, ROLE_MANAGER}))  # managers and admins of the organization


def SERVICES(*names: str) -> Rule:  # noqa: N802 - reads like the other constants in a table
    """Service tokens of these internal services (`sub` = `service:<name>`)."""
    return Rule(services=frozenset(names))


Policies = Mapping[str, Mapping[str, Rule]]  # proto service full name -> method name -> rule


def method_rules(policies: Policies) -> dict[str, Rule]:
    """`/package.Service/Method` -> rule, the form the interceptor looks up."""
    return {f"/{service}/{method}": rule for service, methods in policies.items() for method, rule in methods.items()}


def undeclared(policies: Policies, file_descriptors: Iterable) -> list[str]:
    """Methods of the given proto files' services that have no rule (should be empty)."""
    rules = method_rules(policies)
    return [f"/{service.full_name}/{method.name}"
            for fd in file_descriptors for service in fd.services_by_name.values()
            for method in service.methods if f"/{service.full_name}/{method.name}" not in rules]


def public_methods(policies: Policies) -> frozenset[str]:
    return frozenset(path for path, rule in method_rules(policies).items() if rule.public)
