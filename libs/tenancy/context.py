"""The caller of the current RPC, carried in contextvars set by the server interceptor."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID

from libs.errors import Unauthenticated
from libs.tenancy.peer import ClientPeer, IPAddress

PRINCIPAL_USER = "user"
PRINCIPAL_SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: a user of one organization, or a service acting for one."""

    organization_id: UUID
    subject: str  # user id, or "service:<name>"
    kind: str  # PRINCIPAL_USER or PRINCIPAL_SERVICE
    role: str | None  # UserRole label ("ADMIN", "MANAGER", ...) for users
    token: str  # the raw bearer token, forwarded on calls to other services
    expires_at: float  # unix time

    @property
    def user_id(self) -> UUID | None:
        return UUID(self.subject) if self.kind == PRINCIPAL_USER else None

    @property
    def service_name(self) -> str | None:
        return self.subject.removeprefix("service:") if self.kind == PRINCIPAL_SERVICE else None


_principal: ContextVar[Principal | None] = ContextVar("soulkg_principal", default=None)
# The user roles the current method admits (its policy's rule), checked against the user's
# current row at the start of each transaction (libs/tenancy/database.py). Empty: no check.
_admitted_roles: ContextVar[frozenset[str]] = ContextVar("soulkg_admitted_roles", default=frozenset())
# Absolute time.monotonic() by which the current call must finish (None: no deadline).
_deadline: ContextVar[float | None] = ContextVar("soulkg_deadline", default=None)
# Who is on the other end of the connection (libs/tenancy/peer.py), resolved on first use.
_peer: ContextVar[ClientPeer | None] = ContextVar("soulkg_peer", default=None)


def current_principal() -> Principal | None:
    return _principal.get()


def require_principal() -> Principal:
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("authentication required", reason="MISSING_TOKEN")
    return principal


def set_principal(principal: Principal | None):
    return _principal.set(principal)


def set_admitted_roles(roles: frozenset[str]):
    return _admitted_roles.set(roles)


def admitted_roles() -> frozenset[str]:
    return _admitted_roles.get()


def set_deadline(time_remaining: float | None):
    return _deadline.set(None if time_remaining is None else time.monotonic() + time_remaining)


def time_remaining() -> float | None:
    """Seconds left before the caller's deadline, or None when it set none."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def set_peer(peer: ClientPeer | None):
    return _peer.set(peer)


def client_address() -> IPAddress | None:
    """The calling client's IP address (a trusted proxy's forwarded one), None outside a call
    or over a unix socket."""
    peer = _peer.get()
    return None if peer is None else peer.address
