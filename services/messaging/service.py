"""messaging's use cases. Each write is one TenantDatabase transaction under the caller's
organization; calls to crm and identity go over gRPC with the caller's token and deadline
(libs/clients.py), never inside a transaction; the channel provider and the translator are
called outside transactions too (network I/O never holds a row lock)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from libs import errors
from libs.clients import ServiceClients, call
from libs.errors import FailedPrecondition, InvalidArgument, Unauthenticated
from libs.filtering import compile_filter
from libs.pagination import PageTokenCodec
from libs.persistence import KeysetPager, Page, check_etag, found
from libs.tenancy.context import Principal
from libs.tenancy.database import NO_ORGANIZATION, TenantDatabase
from services.messaging import domain, language
from services.messaging import repository as repo
from services.messaging.domain import Conversation, Event, Handoff, Message, WhatsAppSession
from services.messaging.events import EventHub, Notice, Subscription
from services.messaging.providers import ChannelProvider, OutboundMessage
from services.messaging.translation import NoTranslator, Translator
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc

log = logging.getLogger("soulkg.messaging")

RESEND_INTERVAL_SECONDS = 10.0  # how often a process looks for PENDING messages whose sender died
RESEND_BATCH = 100
WORKING_LANGUAGE_TTL_SECONDS = 60.0
# crm's client languages (a new client's preferred_language must be one of them).
CRM_LANGUAGES = frozenset({"en", "ru", "ar", "fr", "de", "es", "pl"})


@dataclass(frozen=True)
class Ingested:
    message: Message
    conversation: Conversation
    client: crm_pb2.Client
    duplicate: bool
    client_created: bool


class Directory:
    """What messaging asks the other services: crm's clients, identity's users and the
    organization's working language. Every call carries the caller (libs/clients.py)."""

    def __init__(self, clients: ServiceClients) -> None:
        self.crm = clients.stub("crm", crm_pb2_grpc.ClientServiceStub)
        self.users = clients.stub("identity", identity_pb2_grpc.UserServiceStub)
        self.organizations = clients.stub("identity", identity_pb2_grpc.OrganizationServiceStub)
        self._working_languages: dict[UUID, tuple[float, str | None]] = {}

    async def client_for_phone(self, phone: str, name: str | None,
                               language: str | None) -> tuple[crm_pb2.Client, bool]:
        request = crm_pb2.GetOrCreateClientByPhoneRequest(phone=phone, first_name=name)
        if language in CRM_LANGUAGES:
            request.preferred_language = language
        reply = await call("crm", self.crm.GetOrCreateClientByPhone(request))
        return reply.client, reply.created

    async def client(self, client_id: UUID) -> crm_pb2.Client:
        return await call("crm", self.crm.GetClient(crm_pb2.GetClientRequest(id=str(client_id))))

    async def check_assignee(self, user_id: UUID) -> None:
        try:
            user = await call("identity", self.users.GetUser(identity_pb2.GetUserRequest(id=str(user_id))))
        except errors.NotFound:
            raise InvalidArgument.field("assigned_user_id", "no such user in this organization") from None
        if not user.is_active:
            raise FailedPrecondition("the assigned user is deactivated", reason="ASSIGNEE_INACTIVE")

    async def working_language(self, organization_id: UUID) -> str | None:
        """The organization's `settings.working_language` (cached for a minute), or None."""
        cached = self._working_languages.get(organization_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        organization = await call("identity", self.organizations.GetOrganization(
            identity_pb2.GetOrganizationRequest()))
        value = organization.settings["working_language"] if "working_language" in organization.settings else None
        working = value.strip().lower() if isinstance(value, str) and value.strip() else None
        self._working_languages[organization_id] = (time.monotonic() + WORKING_LANGUAGE_TTL_SECONDS, working)
        return working


class Conversations:
    def __init__(self, db: TenantDatabase, page_tokens: PageTokenCodec, directory: Directory) -> None:
        self.db = db
        self.pager = KeysetPager(page_tokens)
        self.directory = directory

    async def get(self, conversation_id: UUID) -> Conversation:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_conversation(conn, conversation_id), "conversation")

    async def list(self, principal: Principal, *, requested_size: int, page_token: str,
                   filter_text: str) -> Page[Conversation]:
        where, params = compile_filter(filter_text, domain.FILTER_FIELDS, first_param=1)
        request = self.pager.request(principal.organization_id, query=("conversations", " ".join(filter_text.split())),
                                     page_token=page_token, requested_size=requested_size,
                                     key_types=(datetime, UUID))
        async with self.db.transaction(readonly=True) as conn:
            rows = await repo.list_conversations(conn, where=where, params=params, after=request.after,
                                                 limit=request.limit)
        return self.pager.page(request, rows, lambda c: (c.last_message_at, c.id))

    async def _set_status(self, conversation_id: UUID, etag: str, check, status: str) -> Conversation:
        async with self.db.transaction() as conn:
            conversation = found(await repo.get_conversation(conn, conversation_id, for_update=True), "conversation")
            check_etag(etag, conversation.etag)
            check(conversation)
            return await repo.set_conversation_status(conn, conversation_id, status)

    async def archive(self, conversation_id: UUID, etag: str) -> Conversation:
        return await self._set_status(conversation_id, etag, domain.check_archive, domain.ARCHIVED)

    async def reopen(self, conversation_id: UUID, etag: str) -> Conversation:
        return await self._set_status(conversation_id, etag, domain.check_reopen, domain.ACTIVE)

    async def hand_off(self, principal: Principal, conversation_id: UUID, to_manager: str | None,
                       assigned_user_id: UUID | None, reason: str | None, etag: str) -> tuple[Conversation, Handoff]:
        domain.check_handoff_request(principal, to_manager, assigned_user_id)
        if assigned_user_id is not None and assigned_user_id != principal.user_id:
            await self.directory.check_assignee(assigned_user_id)  # identity: a user of ours, and active
        async with self.db.transaction() as conn:
            conversation = found(await repo.get_conversation(conn, conversation_id, for_update=True), "conversation")
            check_etag(etag, conversation.etag)
            plan = domain.plan_handoff(conversation, principal, to_manager, assigned_user_id, reason)
            return await repo.hand_off(conn, conversation, plan.to_manager, plan.assigned_user_id,
                                       plan.handed_off_by, plan.handed_off_by_user_id, plan.reason)

    async def handoffs(self, principal: Principal, conversation_id: UUID, *, requested_size: int,
                       page_token: str) -> Page[Handoff]:
        request = self.pager.request(principal.organization_id, query=("handoffs", str(conversation_id)),
                                     page_token=page_token, requested_size=requested_size,
                                     key_types=(datetime, UUID))
        async with self.db.transaction(readonly=True) as conn:
            if request.after is None:
                found(await repo.get_conversation(conn, conversation_id), "conversation")
            rows = await repo.list_handoffs(conn, conversation_id, request.after, request.limit)
        return self.pager.page(request, rows, lambda h: (h.created_at, h.id))


class Messages:
    def __init__(self, db: TenantDatabase, page_tokens: PageTokenCodec, directory: Directory,
                 provider: ChannelProvider, translator: Translator) -> None:
        self.db = db
        self.pager = KeysetPager(page_tokens)
        self.directory = directory
        self.provider = provider
        self.translator = translator

    # --- inbound ------------------------------------------------------------------------------

    async def ingest(self, principal: Principal, inbound: domain.Inbound) -> Ingested:
        """Idempotent on the external id: a repeated delivery returns the stored message."""
        async with self.db.transaction(readonly=True) as conn:
            stored = await repo.message_by_external_id(conn, inbound.external_message_id)
            conversation = await repo.get_conversation(conn, stored.conversation_id) if stored else None
        if stored is not None:
            return Ingested(stored, conversation, await self.directory.client(conversation.client_id), True, False)

        detection = language.detect(inbound.content)
        trusted = domain.trusted(detection, inbound.content)
        client, created = await self.directory.client_for_phone(inbound.phone, inbound.contact_name, trusted)
        client_language = client.preferred_language if client.HasField("preferred_language") else None
        async with self.db.transaction() as conn:
            conversation, _ = await repo.open_conversation(conn, UUID(client.id), inbound.channel, inbound.phone)
            chosen = domain.message_language(detection, inbound.content, conversation.language, client_language)
            message = await repo.insert_inbound(conn, conversation.id, inbound.content, chosen,
                                                inbound.external_message_id, inbound.sent_at)
            if message is None:  # a racing delivery of the same id stored it first
                message = await repo.message_by_external_id(conn, inbound.external_message_id)
                conversation = await repo.get_conversation(conn, message.conversation_id)
                return Ingested(message, conversation, client, True, created)
            conversation = await repo.record_inbound(conn, conversation.id, message.created_at, chosen)
        message = await self._translate(principal.organization_id, message)
        return Ingested(message, conversation, client, False, created)

    async def _translate(self, organization_id: UUID, message: Message) -> Message:
        if isinstance(self.translator, NoTranslator) or message.language is None:
            return message
        working = await self.directory.working_language(organization_id)
        if not domain.needs_translation(message.language, working):
            return message
        translated = await self.translator.translate(message.content, message.language, working)
        if translated is None:
            return message
        async with self.db.transaction() as conn:
            return await repo.set_translation(conn, message.id, translated) or message

    # --- outbound -----------------------------------------------------------------------------

    async def send(self, principal: Principal, conversation_id: UUID, content: str,
                   request_id: UUID | None) -> Message:
        """Stored PENDING (leased to this process), handed to the provider outside the
        transaction, then SENT or FAILED. A retry with the same request id returns the first
        message and never sends again."""
        sender, sender_id = domain.sender_of(principal)
        key = request_id or uuid4()
        async with self.db.transaction() as conn:
            if request_id is not None and (first := await repo.message_by_idempotency_key(conn, key)) is not None:
                return first
            conversation, now = await repo.get_conversation_at(conn, conversation_id)
            conversation = found(conversation, "conversation")
            domain.check_send(conversation, sender, now)
            self._check_channel(conversation)
            message = await repo.insert_outbound(conn, conversation.id, sender, sender_id, content, key,
                                                 domain.SEND_LEASE)
            if message is None:  # a concurrent retry with the same request id stored it first
                return await repo.message_by_idempotency_key(conn, key)
            await repo.record_outbound(conn, conversation.id, message.created_at)
        return await self._deliver(principal.organization_id, message, conversation)

    def _check_channel(self, conversation: Conversation) -> None:
        if conversation.channel not in self.provider.channels:
            raise FailedPrecondition(f"no provider sends on {conversation.channel}", reason="CHANNEL_NOT_SUPPORTED")
        if not conversation.channel_address:
            raise FailedPrecondition("the conversation has no address on its channel",
                                     reason="CHANNEL_ADDRESS_UNKNOWN")

    async def _deliver(self, organization_id: UUID, message: Message, conversation: Conversation) -> Message:
        outbound = OutboundMessage(organization_id, message.id, message.idempotency_key, conversation.channel,
                                   conversation.channel_address or "", message.content)
        try:
            external_id = await asyncio.wait_for(self.provider.send(outbound), domain.SEND_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - any provider failure is the message's FAILED status
            log.warning("sending failed: %s", type(exc).__name__, extra={"fields": {"message_id": str(message.id)}})
            return await self._finish(organization_id, message, error=domain.send_failure(exc))
        return await self._finish(organization_id, message, external_id=external_id)

    async def _finish(self, organization_id: UUID, message: Message, *, external_id: str | None = None,
                      error: str | None = None) -> Message:
        try:
            async with self.db.transaction(organization_id) as conn:
                if external_id is not None:
                    updated = await repo.mark_sent(conn, message.id, external_id)
                else:
                    updated = await repo.mark_failed(conn, message.id, error)
                return updated or await repo.get_message(conn, message.id)
        except asyncpg.UniqueViolationError:  # the channel's id is already another message's
            return await self._finish(organization_id, message, error="the channel returned a message id in use")

    async def resend_stale(self, limit: int = RESEND_BATCH) -> int:
        """Send the PENDING messages whose sender died (its lease ran out), each by exactly
        one process: the claim is an UPDATE that only one claimant wins. Returns how many."""
        async with self.db.transaction(NO_ORGANIZATION) as conn:
            stale = await repo.stale_pending(conn, limit)
        sent = 0
        for organization_id, message_id in stale:
            async with self.db.transaction(organization_id) as conn:
                message = await repo.claim_pending(conn, message_id, domain.SEND_LEASE)
                if message is None:
                    continue
                if message.send_attempts > domain.MAX_SEND_ATTEMPTS:
                    await repo.mark_failed(conn, message_id, f"not sent after {domain.MAX_SEND_ATTEMPTS} attempts")
                    continue
                conversation = await repo.get_conversation(conn, message.conversation_id)
            await self._deliver(organization_id, message, conversation)
            sent += 1
        return sent

    async def run_resender(self, interval: float = RESEND_INTERVAL_SECONDS) -> None:
        while True:
            try:
                await self.resend_stale()
            except Exception:  # noqa: BLE001 - try again next round
                log.exception("re-sending PENDING messages failed")
            await asyncio.sleep(interval)

    # --- delivery reports ---------------------------------------------------------------------

    async def report_delivery(self, external_id: str, report: str, at: datetime | None,
                              error: str | None) -> tuple[Message, bool]:
        async with self.db.transaction() as conn:
            message = found(await repo.message_by_external_id(conn, external_id, for_update=True), "message")
            change = domain.delivery_report(message, report, at or datetime.now(UTC), error)
            if change is None:
                return message, False
            return await repo.set_delivery(conn, message.id, change.status, change.read_at, change.error), True

    # --- reads --------------------------------------------------------------------------------

    async def get(self, message_id: UUID) -> Message:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_message(conn, message_id), "message")

    async def list(self, principal: Principal, conversation_id: UUID, *, requested_size: int,
                   page_token: str) -> Page[Message]:
        request = self.pager.request(principal.organization_id, query=("messages", str(conversation_id)),
                                     page_token=page_token, requested_size=requested_size,
                                     key_types=(datetime, UUID))
        async with self.db.transaction(readonly=True) as conn:
            rows = await repo.list_messages(conn, conversation_id, request.after, request.limit)
            if not rows and request.after is None:
                found(await repo.get_conversation(conn, conversation_id), "conversation")
        return self.pager.page(request, rows, lambda m: (m.created_at, m.id))


class Sessions:
    def __init__(self, db: TenantDatabase, provider: ChannelProvider) -> None:
        self.db = db
        self.provider = provider

    async def get(self) -> WhatsAppSession:
        async with self.db.transaction(readonly=True) as conn:
            session, now = await repo.get_session(conn)
        return (session or WhatsAppSession()).visible(now)

    async def _move(self, to: str, etag: str, **details) -> WhatsAppSession:
        async with self.db.transaction() as conn:
            session, now = await repo.get_session(conn, for_update=True)
            check_etag(etag, session.etag)
            moved = domain.session_move(session.visible(now), to, now, **details)
            return (await repo.save_session(conn, moved)).visible(now)

    async def connect(self, principal: Principal, etag: str) -> WhatsAppSession:
        current = await self.get()
        domain.check_session_move(current.status, domain.CONNECTING)  # before asking the provider
        pairing = await self.provider.start_pairing(principal.organization_id)
        return await self._move(domain.CONNECTING, etag, qr_code=pairing.qr_code, qr_expires_at=pairing.expires_at)

    async def disconnect(self, etag: str) -> WhatsAppSession:
        return await self._move(domain.DISCONNECTED, etag)

    async def report(self, status: str, qr_code: str | None, qr_expires_at: datetime | None,
                     error_message: str | None) -> WhatsAppSession:
        return await self._move(status, "", qr_code=qr_code, qr_expires_at=qr_expires_at,
                                error_message=error_message)


class Events:
    """The live stream: loading notified rows under RLS, subscriptions, token expiry."""

    def __init__(self, db: TenantDatabase) -> None:
        self.db = db
        self.hub: EventHub | None = None

    async def load(self, organization_id: UUID, notices: Sequence[Notice]) -> list[Event]:
        """The events of one organization's notices, in their order, loaded as that
        organization (a row another organization's payload names is simply not found)."""
        message_ids = [n.id for n in notices if n.kind.startswith("message.")]
        handoff_ids = [n.id for n in notices if n.kind == "handoff"]
        conversation_ids = [n.id for n in notices if n.kind == "conversation.updated"]
        wants_session = any(n.kind == "session.updated" for n in notices)
        async with self.db.transaction(organization_id, readonly=True) as conn:
            messages = await repo.messages_by_ids(conn, message_ids) if message_ids else {}
            handoffs = await repo.handoffs_by_ids(conn, handoff_ids) if handoff_ids else {}
            conversations = await repo.conversations_by_ids(conn, conversation_ids) if conversation_ids else {}
            session, now = await repo.get_session(conn) if wants_session else (None, None)
        events = []
        for notice in notices:
            resource = (messages if notice.kind.startswith("message.") else handoffs if notice.kind == "handoff"
                        else conversations).get(notice.id) if notice.kind != "session.updated" else session
            if resource is None:
                continue
            if isinstance(resource, WhatsAppSession):
                resource = resource.visible(now)
            events.append(Event(notice.kind, notice.conversation_id, resource))
        return events

    async def subscribe(self, principal: Principal, conversation_id: UUID | None) -> Subscription:
        if conversation_id is not None:
            async with self.db.transaction(readonly=True) as conn:
                found(await repo.get_conversation(conn, conversation_id), "conversation")
        elif principal.user_id is not None:
            async with self.db.transaction(readonly=True):
                pass  # the user's current state is checked as the transaction begins
        return await self.hub.subscribe(principal.organization_id, conversation_id)

    def unsubscribe(self, subscription: Subscription) -> None:
        self.hub.unsubscribe(subscription)

    async def stream(self, principal: Principal, subscription: Subscription) -> AsyncIterator[Event]:
        """Events until the server stops (the end) or the caller's token expires."""
        while True:
            remaining = principal.expires_at - time.time()
            if remaining <= 0:
                raise Unauthenticated("the token expired; reconnect with a fresh one", reason="TOKEN_EXPIRED")
            try:
                event = await subscription.get(timeout=remaining)
            except TimeoutError:
                continue
            if event is None:
                return
            yield event
