"""crm's rules: what a valid client is, who may record which kind of status change, the
entities crm's repository returns and the typed requests its servicer builds.

Plain values only: no I/O, no SQL, no protobuf. Each validation collects every violation of
one request into one INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from libs.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from libs.validation import (
    Violations,
    etag,
    json_object_text,
    mask_paths,
    normalize_email,
    normalize_phone,
    optional_text,
    optional_uuid,
    parse_uuid,
)

SUPPORTED_LANGUAGES = frozenset({"en", "ru", "ar", "fr", "de", "es", "pl"})
CLIENT_STATUSES = frozenset({"NEW_LEAD", "QUALIFIED", "WARMED", "PROPOSAL_SENT", "NEGOTIATION", "SOLD",
                             "SERVICE", "CLOSED"})
INITIAL_STATUS = "NEW_LEAD"
MAX_REASON = 1000

# The client fields a create or an update may set (also the update mask's paths).
WRITABLE = ("phone", "email", "first_name", "last_name", "preferred_language", "cultural_context", "metadata",
            "assigned_partner_id", "prompt_variant_id")
# The fields ListClients filters on (the repository says how each one becomes SQL).
FILTERABLE = ("status", "preferred_language", "assigned_partner_id", "prompt_variant_id", "create_time",
              "update_time", "search")
# order_by value → (the Client field it sorts on, descending); ties are broken by id.
ORDERINGS = {
    "create_time desc": ("create_time", True), "create_time": ("create_time", False),
    "create_time asc": ("create_time", False),
    "update_time desc": ("update_time", True), "update_time": ("update_time", False),
    "update_time asc": ("update_time", False),
}
DEFAULT_ORDER = "create_time desc"


# --- entities --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Client:
    id: UUID
    phone: str
    email: str | None
    first_name: str | None
    last_name: str | None
    status: str  # a CLIENT_STATUSES label
    preferred_language: str | None
    cultural_context: dict | None
    metadata: dict | None
    assigned_partner_id: UUID | None
    prompt_variant_id: UUID | None
    create_time: datetime
    update_time: datetime
    etag: str  # AIP-154: changes with every update of the row


@dataclass(frozen=True, slots=True)
class StatusChange:
    id: UUID
    client_id: UUID
    old_status: str | None  # None on the client's first row
    new_status: str
    changed_by: str  # HUMAN, AI or SYSTEM
    changed_by_user_id: UUID | None
    changed_by_agent_type: str | None
    reason: str | None
    create_time: datetime


# --- requests, as the servicer hands them over (unvalidated) ------------------------------------

@dataclass(frozen=True)
class ClientFields:
    """A request's client. None: the field is not set (clears it when masked in an update)."""

    phone: str = ""
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    preferred_language: str | None = None
    cultural_context: dict | None = None
    metadata: dict | None = None
    assigned_partner_id: str | None = None
    prompt_variant_id: str | None = None
    status: str | None = None  # never writable here: only to refuse it on create


@dataclass(frozen=True)
class CreateClient:
    client: ClientFields
    request_id: str = ""


@dataclass(frozen=True)
class UpdateClient:
    id: str
    client: ClientFields
    paths: tuple[str, ...]
    etag: str = ""


@dataclass(frozen=True)
class ChangeStatus:
    id: UUID
    status: str | None
    reason: str | None
    changed_by: str | None  # None: the caller's default
    agent_type: str | None


@dataclass(frozen=True)
class PhoneContact:
    """GetOrCreateClientByPhone: the phone, and what to create the client with."""

    phone: str
    first_name: str | None = None
    last_name: str | None = None
    preferred_language: str | None = None


@dataclass(frozen=True)
class ListClients:
    page_size: int
    page_token: str
    filter: str
    order_by: str


@dataclass(frozen=True)
class ListStatusChanges:
    """ListClientStatusChanges: the status changes of a set of clients (a cohort's funnel)."""

    client_ids: tuple[str, ...]
    statuses: tuple[str | None, ...]  # labels; None for UNSPECIFIED (refused)
    since: datetime | None
    page_size: int = 0
    page_token: str = ""


# --- validated requests --------------------------------------------------------------------------

@dataclass(frozen=True)
class StatusChangesQuery:
    client_ids: tuple[UUID, ...]  # distinct, sorted
    statuses: tuple[str, ...]  # distinct, sorted; empty: every status
    since: datetime | None

@dataclass(frozen=True)
class NewClient:
    values: dict[str, object]  # field → value, only the fields given
    request_id: UUID | None


@dataclass(frozen=True)
class ClientUpdate:
    id: UUID
    changes: dict[str, object]  # masked field → new value (None clears)
    etag: str


@dataclass(frozen=True)
class StatusUpdate:
    id: UUID
    status: str
    reason: str | None
    changed_by: str
    agent_type: str | None


# --- rules ---------------------------------------------------------------------------------------

def check_language(value: str, field: str) -> str:
    language = value.strip().lower()
    if language not in SUPPORTED_LANGUAGES:
        raise InvalidArgument.field(field, "must be one of " + ", ".join(sorted(SUPPORTED_LANGUAGES)))
    return language


def check_phone(phone: str, field: str = "phone") -> str:
    return normalize_phone(phone, field)


def _field_value(name: str, value, field: str):
    """One writable field, validated, as the value to store (None clears)."""
    if name == "phone":
        return normalize_phone(value, field)
    if value is None:
        return None
    if name == "email":
        return normalize_email(value, field) if value.strip() else None
    if name in ("first_name", "last_name"):
        return optional_text(value, field)
    if name == "preferred_language":
        return check_language(value, field) if value.strip() else None
    if name in ("cultural_context", "metadata"):
        return json_object_text(value, field)
    if name in ("assigned_partner_id", "prompt_variant_id"):
        return optional_uuid(value, field)
    raise AssertionError(name)


def _values(fields: ClientFields, names: Iterable[str], violations: Violations, prefix: str) -> dict:
    values = {}
    for name in names:
        values[name] = violations.check(_field_value, name, getattr(fields, name), prefix + name)
    return values


def validate_create(request: CreateClient) -> NewClient:
    violations = Violations()
    if request.client.status is not None:
        violations.add("client.status", f"is set by ChangeClientStatus; new clients are {INITIAL_STATUS}")
    values = _values(request.client, WRITABLE, violations, "client.")
    request_id = violations.check(optional_uuid, request.request_id, "request_id")
    violations.raise_if_any("invalid client")
    return NewClient({k: v for k, v in values.items() if v is not None}, request_id)


def validate_update(request: UpdateClient) -> ClientUpdate:
    """AIP-134: the mask is required and names writable fields only; `status` has its own
    method. Masked fields take the request's values, unset ones are cleared."""
    violations = Violations()
    client_id = violations.check(parse_uuid, request.id, "client.id")
    paths = list(dict.fromkeys(request.paths))
    others = [p for p in paths if p != "status"]
    if "status" in paths:
        violations.add("update_mask", "status changes go through ChangeClientStatus")
    if others or "status" not in paths:
        violations.check(mask_paths, others, WRITABLE)
    changes = _values(request.client, [p for p in others if p in WRITABLE], violations, "client.")
    violations.check(etag, request.etag, "client.etag")
    violations.raise_if_any("invalid client update")
    return ClientUpdate(client_id, changes, request.etag)


def validate_contact(request: PhoneContact) -> dict[str, object]:
    """The values of a client created from an inbound message (only the phone is required)."""
    violations = Violations()
    fields = ClientFields(phone=request.phone, first_name=request.first_name, last_name=request.last_name,
                          preferred_language=request.preferred_language)
    values = _values(fields, ("phone", "first_name", "last_name", "preferred_language"), violations, "")
    violations.raise_if_any("invalid contact")
    return {k: v for k, v in values.items() if v is not None}


MAX_COHORT = 10_000  # client ids per ListClientStatusChanges call


def validate_status_changes(request: ListStatusChanges) -> StatusChangesQuery:
    """1 to MAX_COHORT client ids (duplicates ignored), statuses without UNSPECIFIED. Every
    violation at once, but at most 20 malformed ids named."""
    violations = Violations()
    if not request.client_ids:
        violations.add("client_ids", "at least one client id is required")
    elif len(request.client_ids) > MAX_COHORT:
        violations.add("client_ids", f"at most {MAX_COHORT} client ids per call")
    ids: set[UUID] = set()
    bad: list[int] = []
    for index, value in enumerate(request.client_ids[:MAX_COHORT]):
        try:
            ids.add(parse_uuid(value, f"client_ids[{index}]"))
        except InvalidArgument:
            bad.append(index)
    for index in bad[:20]:
        violations.add(f"client_ids[{index}]", "must be a UUID")
    if len(bad) > 20:
        violations.add("client_ids", f"{len(bad)} ids are not UUIDs (the first 20 are named)")
    if any(status is None for status in request.statuses):
        violations.add("statuses", "UNSPECIFIED is not a status")
    violations.raise_if_any("invalid status changes query")
    return StatusChangesQuery(tuple(sorted(ids)), tuple(sorted(set(request.statuses))), request.since)


def check_delete_etag(value: str) -> str:
    return etag(value, "etag")


def parse_order_by(order_by: str) -> tuple[str, bool, str]:
    """(the Client field to sort on, descending, the normalised order_by)."""
    key = " ".join(order_by.lower().split()) or DEFAULT_ORDER
    if key not in ORDERINGS:
        raise InvalidArgument.field("order_by", "must be one of: " + ", ".join(ORDERINGS))
    field, descending = ORDERINGS[key]
    return field, descending, key


def creation_actor(user_id: UUID | None) -> tuple[str, UUID | None]:
    """Who the first history row of a new client names: the user who created it, or the system."""
    return ("HUMAN", user_id) if user_id is not None else ("SYSTEM", None)


def status_change_actor(caller_is_user: bool, requested_by: str | None,
                        agent_type: str | None) -> tuple[str, str | None]:
    """(changed_by, agent_type) for a status change by this caller.

    A user records HUMAN changes (their own id goes with it). A service (an AI agent, the
    webhook) records AI changes, naming the agent, or SYSTEM ones."""
    if caller_is_user:
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


def validate_status_change(request: ChangeStatus, caller_is_user: bool) -> StatusUpdate:
    violations = Violations()
    if request.status is None:
        violations.add("status", "is required (UNSPECIFIED is not allowed)")
    actor = violations.check(status_change_actor, caller_is_user, request.changed_by, request.agent_type)
    reason = violations.check(optional_text, request.reason, "reason", MAX_REASON)
    violations.raise_if_any("invalid status change")
    changed_by, agent_type = actor
    return StatusUpdate(request.id, request.status, reason, changed_by, agent_type)


def check_status_change(current: str, new: str) -> None:
    if current == new:
        raise FailedPrecondition(f"the client is already {new}", reason="STATUS_UNCHANGED")


# --- errors the repository raises for constraint violations ------------------------------------

def phone_taken() -> AlreadyExists:
    return AlreadyExists("a client with this phone already exists", reason="PHONE_TAKEN")


def unknown_reference(field: str) -> InvalidArgument:
    """A client names a partner or prompt variant the organization does not have."""
    return InvalidArgument.field(f"client.{field}", "no such resource in this organization")
