"""The audit log: who did what, appended to `audit_events` in the transaction of the change.

Every service records its security-relevant actions here, inside the use case's own
transaction, so an event exists exactly when its change was committed:

    async with self.db.transaction() as conn:
        await repo.delete_client(conn, client_id)
        await audit.record(conn, "client.deleted", target_type="client", target_id=client_id)

The actor (the calling user, or the service of a service token), the client's address and
the request id come from the call's contextvars (set by the interceptor); a public method
with no caller yet (login, sign-up) names its actor. The organization is the transaction's.
Actions are stable dotted names, `<resource>.<past participle>` (`user.deactivated`,
`auth.login_failed`): clients filter on them, so never rename one.

Every service's role may INSERT into `audit_events` and none may UPDATE or DELETE it
(migrations/versions/0006); identity's role alone reads it (AuditService/ListAuditEvents).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import structlog

from libs.tenancy.context import PRINCIPAL_SERVICE, PRINCIPAL_USER, client_address, current_principal

ACTOR_USER = "USER"
ACTOR_SERVICE = "SERVICE"
ACTOR_ANONYMOUS = "ANONYMOUS"  # nobody authenticated yet: a failed login for an unknown email
ACTION_PATTERN = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")

_INSERT = """INSERT INTO audit_events (organization_id, actor_kind, actor_id, action, target_type, target_id,
        client_address, request_id, details)
    VALUES ((SELECT app.current_org()), $1, $2, $3, $4, $5, $6::inet, $7, $8::jsonb)"""


@dataclass(frozen=True)
class Actor:
    kind: str  # ACTOR_USER, ACTOR_SERVICE or ACTOR_ANONYMOUS
    id: str | None  # the user's id, the service's name, None for anonymous

    @classmethod
    def user(cls, user_id: UUID | str) -> Actor:
        return cls(ACTOR_USER, str(user_id))


ANONYMOUS = Actor(ACTOR_ANONYMOUS, None)


def current_actor() -> Actor:
    """The caller of the current RPC, as the audit log names it."""
    principal = current_principal()
    if principal is None:
        return ANONYMOUS
    if principal.kind == PRINCIPAL_USER:
        return Actor(ACTOR_USER, principal.subject)
    if principal.kind == PRINCIPAL_SERVICE:
        return Actor(ACTOR_SERVICE, principal.service_name)
    return ANONYMOUS


async def record(conn: asyncpg.Connection, action: str, *, target_type: str | None = None,
                 target_id: UUID | str | None = None, details: Mapping[str, object] | None = None,
                 actor: Actor | None = None) -> None:
    """Append one event to the transaction's organization's audit log."""
    if not ACTION_PATTERN.match(action):
        raise ValueError(f"audit action {action!r} is not a dotted lower-case name")
    actor = actor or current_actor()
    address = client_address()
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    await conn.execute(_INSERT, actor.kind, actor.id, action, target_type,
                       str(target_id) if target_id is not None else None,
                       str(address) if address is not None else None, request_id,
                       json.dumps(dict(details or {}), default=str))
