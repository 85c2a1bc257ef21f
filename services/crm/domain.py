"""crm's rules: what a valid client is, who may record which kind of status change."""

from __future__ import annotations

from libs.errors import InvalidArgument, PermissionDenied
from libs.filtering import (
    EQUALITY,
    ORDERING,
    FilterField,
    to_enum_label,
    to_like_pattern,
    to_timestamp,
    to_uuid,
)
from libs.tenancy.context import PRINCIPAL_USER, Principal

SUPPORTED_LANGUAGES = frozenset({"en", "ru", "ar", "fr", "de", "es", "pl"})
CLIENT_STATUSES = frozenset({"NEW_LEAD", "QUALIFIED", "WARMED", "PROPOSAL_SENT", "NEGOTIATION", "SOLD",
                             "SERVICE", "CLOSED"})
MAX_REASON = 1000

FILTER_FIELDS = {
    "status": FilterField("status", EQUALITY, to_enum_label(CLIENT_STATUSES, "CLIENT_STATUS_")),
    "preferred_language": FilterField("preferred_language", EQUALITY, lambda v: check_language(v, "filter")),
    "assigned_partner_id": FilterField("assigned_partner_id", EQUALITY, to_uuid),
    "prompt_variant_id": FilterField("prompt_variant_id", EQUALITY, to_uuid),
    "create_time": FilterField("created_at", ORDERING, to_timestamp),
    "update_time": FilterField("updated_at", ORDERING, to_timestamp),
    "search": FilterField("(phone LIKE {p} OR email ILIKE {p} OR first_name ILIKE {p} OR last_name ILIKE {p} "
                          "OR (first_name || ' ' || last_name) ILIKE {p})", frozenset({"=", ":"}),
                          to_like_pattern, template=True),
}
# order_by value → (column, descending)
ORDERINGS = {
    "create_time desc": ("created_at", True), "create_time": ("created_at", False),
    "create_time asc": ("created_at", False),
    "update_time desc": ("updated_at", True), "update_time": ("updated_at", False),
    "update_time asc": ("updated_at", False),
}
DEFAULT_ORDER = "create_time desc"


def check_language(value: str, field: str) -> str:
    language = value.strip().lower()
    if language not in SUPPORTED_LANGUAGES:
        raise InvalidArgument.field(field, "must be one of " + ", ".join(sorted(SUPPORTED_LANGUAGES)))
    return language


def parse_order_by(order_by: str) -> tuple[str, bool, str]:
    key = " ".join(order_by.lower().split()) or DEFAULT_ORDER
    if key not in ORDERINGS:
        raise InvalidArgument.field("order_by", "must be one of: " + ", ".join(ORDERINGS))
    column, descending = ORDERINGS[key]
    return column, descending, key


def status_change_actor(principal: Principal, requested_by: str | None,
                        agent_type: str | None) -> tuple[str, str | None]:
    """(changed_by, agent_type) for a status change by this caller.

    A user records HUMAN changes (their own id goes with it). A service (an AI agent, the
    webhook) records AI changes, naming the agent, or SYSTEM ones."""
    if principal.kind == PRINCIPAL_USER:
        if requested_by not in (None, "HUMAN"):
            raise PermissionDenied("users record HUMAN status changes only", reason="CHANGED_BY_NOT_ALLOWED")
        if agent_type is not None:
            raise InvalidArgument.field("agent_type", "is only for changed_by = AI")
        return "HUMAN", None
    changed_by = requested_by or "SYSTEM"
    if changed_by == "HUMAN":
        raise PermissionDenied("a service cannot record a HUMAN status change", reason="CHANGED_BY_NOT_ALLOWED")
    if changed_by == "AI" and agent_type is None:
        raise InvalidArgument.field("agent_type", "is required when changed_by is AI")
    if changed_by != "AI" and agent_type is not None:
        raise InvalidArgument.field("agent_type", "is only for changed_by = AI")
    return changed_by, agent_type
