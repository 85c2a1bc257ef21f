"""messaging's gRPC servicers: wire <-> use cases. No SQL here; rules live in domain.py."""

from __future__ import annotations

from datetime import UTC

from google.protobuf import timestamp_pb2

from libs.errors import InvalidArgument
from libs.idempotency import parse_request_id
from libs.tenancy.context import require_principal
from libs.validation import optional_text
from libs.wire import enum_label, enum_value, parse_uuid, required_enum_label, timestamp
from services.messaging import domain
from services.messaging.domain import Conversation, Event, Handoff, Message, WhatsAppSession
from services.messaging.service import Conversations, Events, Messages, Sessions
from soulkg.messaging.v1 import enums_pb2 as enums
from soulkg.messaging.v1 import messaging_pb2 as pb
from soulkg.messaging.v1 import messaging_pb2_grpc as pb_grpc


def _id(value) -> str | None:
    return str(value) if value is not None else None


def _time(value: timestamp_pb2.Timestamp, present: bool):
    return value.ToDatetime(tzinfo=UTC) if present else None


def conversation_message(c: Conversation) -> pb.Conversation:
    return pb.Conversation(
        id=str(c.id), client_id=str(c.client_id), channel=enum_value(enums.CommunicationChannel, c.channel),
        channel_address=c.channel_address or "", status=enum_value(enums.ConversationStatus, c.status),
        managed_by=enum_value(enums.ConversationManager, c.managed_by), assigned_user_id=_id(c.assigned_user_id),
        language=c.language, last_message_time=timestamp(c.last_message_at),
        last_inbound_time=timestamp(c.last_inbound_at), service_window_end_time=timestamp(c.service_window_end),
        unanswered=c.unanswered, create_time=timestamp(c.created_at), update_time=timestamp(c.updated_at),
        etag=c.etag)


def message_message(m: Message) -> pb.Message:
    return pb.Message(
        id=str(m.id), conversation_id=str(m.conversation_id), direction=enum_value(enums.MessageDirection, m.direction),
        sender=enum_value(enums.MessageSender, m.sender), sender_id=_id(m.sender_id), content=m.content,
        language=m.language, translated_content=m.translated_content, external_message_id=m.external_message_id,
        status=enum_value(enums.MessageStatus, m.status), error=m.error, read_time=timestamp(m.read_at),
        create_time=timestamp(m.created_at))


def handoff_message(h: Handoff) -> pb.Handoff:
    return pb.Handoff(
        id=str(h.id), conversation_id=str(h.conversation_id),
        from_manager=enum_value(enums.ConversationManager, h.from_manager),
        to_manager=enum_value(enums.ConversationManager, h.to_manager), assigned_user_id=_id(h.assigned_user_id),
        handed_off_by=enum_value(enums.ConversationManager, h.handed_off_by),
        handed_off_by_user_id=_id(h.handed_off_by_user_id), reason=h.reason, create_time=timestamp(h.created_at))


def session_message(s: WhatsAppSession) -> pb.WhatsAppSession:
    return pb.WhatsAppSession(
        status=enum_value(enums.WhatsAppSessionStatus, s.status), qr_code=s.qr_code,
        qr_code_expire_time=timestamp(s.qr_expires_at), last_connected_time=timestamp(s.last_connected_at),
        last_disconnected_time=timestamp(s.last_disconnected_at), error_message=s.error_message,
        update_time=timestamp(s.updated_at), etag=s.etag)


def event_message(event: Event) -> pb.Event:
    reply = pb.Event(conversation_id=_id(event.conversation_id) or "")
    if event.kind == "resync":
        reply.resync.reason = event.resync_reason or ""
    elif event.kind == "message.created":
        reply.message_created.CopyFrom(message_message(event.resource))
    elif event.kind == "message.updated":
        reply.message_updated.CopyFrom(message_message(event.resource))
    elif event.kind == "handoff":
        reply.conversation_handed_off.CopyFrom(handoff_message(event.resource))
    elif event.kind == "conversation.updated":
        reply.conversation_updated.CopyFrom(conversation_message(event.resource))
    elif event.kind == "session.updated":
        reply.whats_app_session_updated.CopyFrom(session_message(event.resource))
    return reply


class ConversationServicer(pb_grpc.ConversationServiceServicer):
    def __init__(self, conversations: Conversations) -> None:
        self.conversations = conversations

    async def GetConversation(self, request, context):
        require_principal()
        return conversation_message(await self.conversations.get(parse_uuid(request.id, "id")))

    async def ListConversations(self, request, context):
        page = await self.conversations.list(require_principal(), requested_size=request.page_size,
                                             page_token=request.page_token, filter_text=request.filter)
        return pb.ListConversationsResponse(conversations=[conversation_message(c) for c in page.items],
                                            next_page_token=page.next_page_token)

    async def ArchiveConversation(self, request, context):
        require_principal()
        return conversation_message(await self.conversations.archive(parse_uuid(request.id, "id"), request.etag))

    async def ReopenConversation(self, request, context):
        require_principal()
        return conversation_message(await self.conversations.reopen(parse_uuid(request.id, "id"), request.etag))

    async def HandOffConversation(self, request, context):
        principal = require_principal()
        assignee = parse_uuid(request.assigned_user_id, "assigned_user_id") \
            if request.HasField("assigned_user_id") and request.assigned_user_id else None
        conversation, handoff = await self.conversations.hand_off(
            principal, parse_uuid(request.id, "id"), enum_label(enums.ConversationManager, request.to, "to"),
            assignee, optional_text(request.reason, "reason", domain.MAX_REASON), request.etag)
        return pb.HandOffConversationResponse(conversation=conversation_message(conversation),
                                              handoff=handoff_message(handoff))

    async def ListHandoffs(self, request, context):
        page = await self.conversations.handoffs(
            require_principal(), parse_uuid(request.conversation_id, "conversation_id"),
            requested_size=request.page_size, page_token=request.page_token)
        return pb.ListHandoffsResponse(handoffs=[handoff_message(h) for h in page.items],
                                       next_page_token=page.next_page_token)


class MessageServicer(pb_grpc.MessageServiceServicer):
    def __init__(self, messages: Messages, events: Events) -> None:
        self.messages = messages
        self.events = events

    async def IngestInboundMessage(self, request, context):
        principal = require_principal()
        inbound = domain.inbound(enum_label(enums.CommunicationChannel, request.channel, "channel"),
                                 request.from_phone, request.content, request.external_message_id,
                                 _time(request.sent_time, request.HasField("sent_time")), request.contact_name)
        result = await self.messages.ingest(principal, inbound)
        return pb.IngestInboundMessageResponse(
            message=message_message(result.message), conversation=conversation_message(result.conversation),
            client=result.client, duplicate=result.duplicate, client_created=result.client_created)

    async def SendMessage(self, request, context):
        principal = require_principal()
        values, violations = {}, []
        for field, parse in (("conversation_id", lambda: parse_uuid(request.conversation_id, "conversation_id")),
                             ("content", lambda: domain.message_text(request.content)),
                             ("request_id", lambda: parse_request_id(request.request_id))):
            try:
                values[field] = parse()
            except InvalidArgument as exc:
                violations.extend(exc.violations)
        if violations:
            raise InvalidArgument("invalid message", violations)
        return message_message(await self.messages.send(principal, values["conversation_id"], values["content"],
                                                        values["request_id"]))

    async def UpdateMessageStatus(self, request, context):
        require_principal()
        external_id = domain.external_id(request.external_message_id)
        report = required_enum_label(pb.DeliveryStatus, request.status, "status")
        message, applied = await self.messages.report_delivery(
            external_id, report, _time(request.time, request.HasField("time")),
            optional_text(request.error, "error", domain.MAX_ERROR))
        return pb.UpdateMessageStatusResponse(message=message_message(message), applied=applied)

    async def ListMessages(self, request, context):
        page = await self.messages.list(require_principal(), parse_uuid(request.conversation_id, "conversation_id"),
                                        requested_size=request.page_size, page_token=request.page_token)
        return pb.ListMessagesResponse(messages=[message_message(m) for m in page.items],
                                       next_page_token=page.next_page_token)

    async def GetMessage(self, request, context):
        require_principal()
        return message_message(await self.messages.get(parse_uuid(request.id, "id")))

    async def StreamEvents(self, request, context):
        principal = require_principal()
        conversation_id = parse_uuid(request.conversation_id, "conversation_id") \
            if request.HasField("conversation_id") and request.conversation_id else None
        subscription = await self.events.subscribe(principal, conversation_id)
        try:
            yield pb.Event(subscribed=pb.Subscribed())  # live: what commits from here on follows
            async for event in self.events.stream(principal, subscription):
                yield event_message(event)
        finally:
            self.events.unsubscribe(subscription)


class WhatsAppSessionServicer(pb_grpc.WhatsAppSessionServiceServicer):
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def GetWhatsAppSession(self, request, context):
        require_principal()
        return session_message(await self.sessions.get())

    async def ConnectWhatsApp(self, request, context):
        return session_message(await self.sessions.connect(require_principal(), request.etag))

    async def DisconnectWhatsApp(self, request, context):
        require_principal()
        return session_message(await self.sessions.disconnect(request.etag))

    async def ReportSessionState(self, request, context):
        require_principal()
        status = required_enum_label(enums.WhatsAppSessionStatus, request.status, "status")
        return session_message(await self.sessions.report(
            status, optional_text(request.qr_code, "qr_code", 4096),
            _time(request.qr_code_expire_time, request.HasField("qr_code_expire_time")),
            optional_text(request.error_message, "error_message", domain.MAX_ERROR)))
