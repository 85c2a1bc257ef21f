"""messaging's rules and entities (no I/O): who may send when, the delivery-status ladder,
hand-offs, WhatsApp's 24-hour window, the session's state machine, the message language."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from libs.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from libs.filtering import EQUALITY, ORDERING, FilterField, to_bool, to_enum_label, to_timestamp, to_uuid
from libs.persistence import etag_of
from libs.tenancy.context import PRINCIPAL_USER, Principal
from libs.validation import normalize_phone, optional_text

# What a message's language may be: the seed's client languages and the region's.
SUPPORTED_LANGUAGES = ("en", "ru", "ky", "kk", "uz", "tr", "de", "ar", "fr", "es", "pl")
# A detection is trusted only this sure and with this many letters; below that (a "Рахмат",
# which Kyrgyz, Kazakh and Uzbek share; an "ok"; an emoji) the conversation keeps its language.
MIN_LANGUAGE_CONFIDENCE = 0.8
MIN_LANGUAGE_LETTERS = 4

MAX_CONTENT = 4096  # WhatsApp's limit for a text message
MAX_EXTERNAL_ID = 256
MAX_NAME = 200
MAX_REASON = 1000
MAX_ERROR = 1000

SERVICE_WINDOW = timedelta(hours=24)  # WhatsApp's customer-service window
SEND_LEASE = timedelta(seconds=30)  # how long a sender owns a PENDING message
SEND_TIMEOUT_SECONDS = 15.0  # a provider call never outlives the lease
MAX_SEND_ATTEMPTS = 3
QR_CODE_TTL = timedelta(seconds=60)

WHATSAPP = "WHATSAPP"
CHANNELS = frozenset({"WHATSAPP", "TELEGRAM", "EMAIL"})
INGEST_CHANNELS = frozenset({WHATSAPP})
ACTIVE, ARCHIVED = "ACTIVE", "ARCHIVED"
AI, HUMAN, CLIENT = "AI", "HUMAN", "CLIENT"
INCOMING, OUTGOING = "INCOMING", "OUTGOING"
PENDING, SENT, DELIVERED, FAILED = "PENDING", "SENT", "DELIVERED", "FAILED"
READ = "READ"  # a delivery report, not a status: it keeps the read time
CONNECTING, CONNECTED, DISCONNECTED, ERROR = "CONNECTING", "CONNECTED", "DISCONNECTED", "ERROR"

FILTER_FIELDS = {
    "status": FilterField("status", EQUALITY, to_enum_label(frozenset({ACTIVE, ARCHIVED}), "CONVERSATION_STATUS_")),
    "managed_by": FilterField("managed_by", EQUALITY, to_enum_label(frozenset({AI, HUMAN}), "CONVERSATION_MANAGER_")),
    "channel": FilterField("channel", EQUALITY, to_enum_label(CHANNELS, "COMMUNICATION_CHANNEL_")),
    "client_id": FilterField("client_id", EQUALITY, to_uuid),
    "assigned_user_id": FilterField("assigned_user_id", EQUALITY, to_uuid),
    "unanswered": FilterField("(last_inbound_at IS NOT NULL AND last_inbound_at >= last_message_at)", EQUALITY,
                              to_bool),
    "last_message_time": FilterField("last_message_at", ORDERING, to_timestamp),
}


# --- entities ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Conversation:
    id: UUID
    client_id: UUID
    channel: str
    channel_address: str | None
    status: str
    managed_by: str
    assigned_user_id: UUID | None
    language: str | None
    last_message_at: datetime
    last_inbound_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def etag(self) -> str:
        return etag_of(self.updated_at)

    @property
    def service_window_end(self) -> datetime | None:
        """WhatsApp: free-form messages may go out until then (None: never, or no window)."""
        if self.channel != WHATSAPP or self.last_inbound_at is None:
            return None
        return self.last_inbound_at + SERVICE_WINDOW

    @property
    def unanswered(self) -> bool:
        return self.last_inbound_at is not None and self.last_inbound_at >= self.last_message_at


@dataclass(frozen=True)
class Message:
    id: UUID
    conversation_id: UUID
    direction: str
    sender: str
    sender_id: UUID | None
    content: str
    language: str | None
    translated_content: str | None
    external_message_id: str | None
    status: str
    error: str | None
    read_at: datetime | None
    created_at: datetime
    idempotency_key: UUID | None = None
    send_attempts: int = 0


@dataclass(frozen=True)
class Handoff:
    id: UUID
    conversation_id: UUID
    from_manager: str
    to_manager: str
    assigned_user_id: UUID | None
    handed_off_by: str
    handed_off_by_user_id: UUID | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class WhatsAppSession:
    status: str = DISCONNECTED
    qr_code: str | None = None
    qr_expires_at: datetime | None = None
    last_connected_at: datetime | None = None
    last_disconnected_at: datetime | None = None
    error_message: str | None = None
    updated_at: datetime | None = None  # None: never connected (no row yet)

    @property
    def etag(self) -> str:
        return etag_of(self.updated_at) if self.updated_at else ""

    def visible(self, now: datetime) -> WhatsAppSession:
        """What a caller sees: an expired QR code is gone."""
        if self.qr_code is not None and (self.qr_expires_at is None or self.qr_expires_at <= now):
            return replace(self, qr_code=None, qr_expires_at=None)
        return self


@dataclass(frozen=True)
class Event:
    """One event of an organization's live stream. `kind`: message.created, message.updated,
    handoff, conversation.updated, session.updated, or resync (events were dropped)."""

    kind: str
    conversation_id: UUID | None = None
    resource: Message | Handoff | Conversation | WhatsAppSession | None = None
    resync_reason: str | None = None


RESYNC_SLOW_CONSUMER = Event("resync", resync_reason="SLOW_CONSUMER")
RESYNC_INTERRUPTED = Event("resync", resync_reason="NOTIFICATIONS_INTERRUPTED")


# --- inbound messages --------------------------------------------------------------------------

@dataclass(frozen=True)
class Inbound:
    channel: str
    phone: str
    content: str
    external_message_id: str
    sent_at: datetime | None
    contact_name: str | None


def inbound(channel: str | None, from_phone: str, content: str, external_message_id: str,
            sent_at: datetime | None, contact_name: str) -> Inbound:
    """A validated inbound message; every violation of the request in one error."""
    violations: list[tuple[str, str]] = []

    def check(field: str, rule):
        try:
            return rule()
        except InvalidArgument as exc:
            violations.extend(exc.violations or [(field, exc.message)])
            return None

    if channel is None:
        violations.append(("channel", "is required"))
    elif channel not in INGEST_CHANNELS:
        violations.append(("channel", "only COMMUNICATION_CHANNEL_WHATSAPP is supported so far"))
    phone = check("from_phone", lambda: normalize_phone(from_phone, "from_phone"))
    text = check("content", lambda: message_text(content))
    external = check("external_message_id", lambda: external_id(external_message_id))
    name = check("contact_name", lambda: optional_text(contact_name, "contact_name", MAX_NAME))
    if violations:
        raise InvalidArgument("invalid inbound message", violations)
    return Inbound(channel, phone, text, external, sent_at, name)


def message_text(content: str, field: str = "content") -> str:
    if not content.strip():
        raise InvalidArgument.field(field, "must not be empty")
    if len(content) > MAX_CONTENT:
        raise InvalidArgument.field(field, f"must be at most {MAX_CONTENT} characters")
    if "\x00" in content:
        raise InvalidArgument.field(field, "must not contain NUL characters")
    return content


def external_id(value: str, field: str = "external_message_id") -> str:
    """A channel's message id: required, printable, at most MAX_EXTERNAL_ID characters."""
    value = value.strip()
    if not value:
        raise InvalidArgument.field(field, "is required")
    if len(value) > MAX_EXTERNAL_ID or not value.isprintable():
        raise InvalidArgument.field(field, f"must be at most {MAX_EXTERNAL_ID} printable characters")
    return value


@dataclass(frozen=True)
class Detection:
    language: str
    confidence: float


def trusted(detection: Detection | None, text: str) -> str | None:
    """The detected language if the detection can be trusted for this text, else None."""
    if detection is None or detection.language not in SUPPORTED_LANGUAGES:
        return None
    letters = sum(1 for ch in text if ch.isalpha())
    if letters < MIN_LANGUAGE_LETTERS or detection.confidence < MIN_LANGUAGE_CONFIDENCE:
        return None
    return detection.language


def message_language(detection: Detection | None, text: str, conversation_language: str | None,
                     client_language: str | None) -> str | None:
    """A message's language: a trusted detection, else the conversation's (a short "Рахмат"
    does not move a Kyrgyz conversation to Uzbek), else the client's preferred one, else
    unknown. Never a guess."""
    return trusted(detection, text) or conversation_language or client_language


def needs_translation(language: str | None, working_language: str | None) -> bool:
    return language is not None and working_language is not None and language != working_language


# --- outbound messages -------------------------------------------------------------------------

def sender_of(principal: Principal) -> tuple[str, UUID | None]:
    """(sender, sender_id): a user sends as HUMAN under their own id; the AI agent's service
    token sends as AI."""
    if principal.kind == PRINCIPAL_USER:
        return HUMAN, principal.user_id
    return AI, None


def check_send(conversation: Conversation, sender: str, now: datetime) -> None:
    """May `sender` send a free-form message to this conversation now?"""
    if conversation.status != ACTIVE:
        raise FailedPrecondition("the conversation is archived; reopen it first", reason="CONVERSATION_ARCHIVED")
    if sender == AI and conversation.managed_by == HUMAN:
        raise FailedPrecondition("a human manages this conversation: the AI agent may not send",
                                 reason="CONVERSATION_MANAGED_BY_HUMAN")
    if sender == HUMAN and conversation.managed_by == AI:
        raise FailedPrecondition("the AI agent manages this conversation: hand it off to a human first",
                                 reason="CONVERSATION_MANAGED_BY_AI")
    check_service_window(conversation, now)


def check_service_window(conversation: Conversation, now: datetime) -> None:
    """WhatsApp: free-form messages only within 24 hours of the client's latest message (the
    window ends at exactly 24 h). Template messages, allowed outside it, are not supported."""
    if conversation.channel != WHATSAPP:
        return
    end = conversation.service_window_end
    if end is None or now >= end:
        raise FailedPrecondition(
            "WhatsApp's 24-hour customer-service window is closed: the client has not written in the "
            "last 24 hours (template messages are not supported yet)", reason="OUTSIDE_SERVICE_WINDOW",
            metadata={"window_end_time": end.isoformat() if end else ""})


def send_failure(error: BaseException) -> str:
    """What a FAILED message records about its provider's failure."""
    text = str(error).strip() or type(error).__name__
    return text[:MAX_ERROR]


# --- delivery status ---------------------------------------------------------------------------

_RANK = {PENDING: 0, SENT: 1, DELIVERED: 2}


@dataclass(frozen=True)
class Delivery:
    status: str
    read_at: datetime | None
    error: str | None


def delivery_report(message: Message, report: str, at: datetime, error: str | None) -> Delivery | None:
    """The message's new delivery state after the channel's `report` (SENT, DELIVERED, READ,
    FAILED), or None when the report changes nothing: statuses only move forward
    (PENDING -> SENT -> DELIVERED; FAILED from PENDING or SENT; FAILED is final), so a late,
    repeated or out-of-order report is ignored, never an error. READ implies DELIVERED and
    keeps the first read time."""
    if message.direction != OUTGOING or message.status == FAILED:
        return None
    current = Delivery(message.status, message.read_at, message.error)
    if report == FAILED:
        if message.status in (PENDING, SENT):
            return Delivery(FAILED, message.read_at, (error or "the channel reported a failure")[:MAX_ERROR])
        return None
    target = DELIVERED if report == READ else report
    status = target if _RANK[target] > _RANK[message.status] else message.status
    read_at = at if report == READ and message.read_at is None else message.read_at
    new = Delivery(status, read_at, message.error)
    return None if new == current else new


# --- hand-offs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class HandoffPlan:
    to_manager: str
    assigned_user_id: UUID | None
    handed_off_by: str  # HUMAN (a user) or AI (the AI agent)
    handed_off_by_user_id: UUID | None
    reason: str | None


def check_handoff_request(principal: Principal, to_manager: str | None, assigned_user_id: UUID | None) -> None:
    """The rules a hand-off request must meet whatever the conversation's state."""
    if to_manager is None:
        raise InvalidArgument.field("to", "is required")
    if to_manager == AI and assigned_user_id is not None:
        raise InvalidArgument.field("assigned_user_id", "only a hand-off to a human names an assignee")
    if principal.kind != PRINCIPAL_USER:
        if to_manager == AI:
            raise PermissionDenied("the AI agent may hand a conversation to a human, not take it over",
                                   reason="AI_CANNOT_TAKE_OVER")
        if assigned_user_id is not None:
            raise InvalidArgument.field("assigned_user_id", "the AI agent hands off unassigned")


def plan_handoff(conversation: Conversation, principal: Principal, to_manager: str | None,
                 assigned_user_id: UUID | None, reason: str | None) -> HandoffPlan:
    """A user hands over either way; to a human without an assignee, the user takes it. The AI
    agent only hands over to a human, unassigned (a manager picks it up), never takes over."""
    check_handoff_request(principal, to_manager, assigned_user_id)
    if conversation.status != ACTIVE:
        raise FailedPrecondition("the conversation is archived; reopen it first", reason="CONVERSATION_ARCHIVED")
    is_user = principal.kind == PRINCIPAL_USER
    if to_manager == HUMAN and assigned_user_id is None and is_user:
        assigned_user_id = principal.user_id
    if to_manager == conversation.managed_by and assigned_user_id == conversation.assigned_user_id:
        raise FailedPrecondition(f"the conversation is already managed by {to_manager.lower()}"
                                 + (" and assigned so" if assigned_user_id else ""), reason="HANDOFF_UNCHANGED")
    return HandoffPlan(to_manager, assigned_user_id, HUMAN if is_user else AI,
                       principal.user_id if is_user else None, reason)


def check_reopen(conversation: Conversation) -> None:
    if conversation.status == ACTIVE:
        raise FailedPrecondition("the conversation is open", reason="CONVERSATION_ACTIVE")


def check_archive(conversation: Conversation) -> None:
    if conversation.status == ARCHIVED:
        raise FailedPrecondition("the conversation is archived already", reason="CONVERSATION_ARCHIVED")


# --- the WhatsApp session ----------------------------------------------------------------------

# The seed's four states and the moves between them (anything else is refused).
SESSION_MOVES: dict[str, frozenset[str]] = {
    DISCONNECTED: frozenset({CONNECTING}),
    CONNECTING: frozenset({CONNECTING, CONNECTED, DISCONNECTED, ERROR}),
    CONNECTED: frozenset({DISCONNECTED, ERROR}),
    ERROR: frozenset({CONNECTING, DISCONNECTED}),
}
# What the channel bridge may report (ConnectWhatsApp starts pairing; the bridge refreshes it).
REPORTABLE = frozenset({CONNECTING, CONNECTED, DISCONNECTED, ERROR})


def check_session_move(current: str, to: str) -> None:
    if to not in SESSION_MOVES[current]:
        raise FailedPrecondition(f"the WhatsApp session cannot go from {current} to {to}",
                                 reason="ILLEGAL_SESSION_TRANSITION", metadata={"from": current, "to": to})


def session_move(session: WhatsAppSession, to: str, now: datetime, *, qr_code: str | None = None,
                 qr_expires_at: datetime | None = None, error_message: str | None = None) -> WhatsAppSession:
    """The session after moving to `to` at `now`. CONNECTING carries a QR code (default expiry
    60 s); CONNECTED clears the QR code and the error and stamps last_connected_at; DISCONNECTED
    stamps last_disconnected_at; ERROR keeps its message (and ends a connected session)."""
    check_session_move(session.status, to)
    cleared = replace(session, status=to, qr_code=None, qr_expires_at=None, error_message=None)
    if to == CONNECTING:
        if not qr_code:
            raise InvalidArgument.field("qr_code", "is required when connecting")
        expires = qr_expires_at or now + QR_CODE_TTL
        if expires <= now:
            raise InvalidArgument.field("qr_code_expire_time", "must be in the future")
        return replace(cleared, qr_code=qr_code, qr_expires_at=expires)
    if to == CONNECTED:
        return replace(cleared, last_connected_at=now)
    if to == DISCONNECTED:
        return replace(cleared, last_disconnected_at=now)
    if not error_message:
        raise InvalidArgument.field("error_message", "is required with ERROR")
    ended = now if session.status == CONNECTED else session.last_disconnected_at
    return replace(cleared, error_message=error_message[:MAX_ERROR], last_disconnected_at=ended)
