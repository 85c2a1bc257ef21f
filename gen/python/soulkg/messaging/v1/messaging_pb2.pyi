import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from soulkg.crm.v1 import crm_pb2 as _crm_pb2
from soulkg.messaging.v1 import enums_pb2 as _enums_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_SENT: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DELIVERED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_READ: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_FAILED: _ClassVar[DeliveryStatus]
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_SENT: DeliveryStatus
DELIVERY_STATUS_DELIVERED: DeliveryStatus
DELIVERY_STATUS_READ: DeliveryStatus
DELIVERY_STATUS_FAILED: DeliveryStatus

class Conversation(_message.Message):
    __slots__ = ("id", "client_id", "channel", "channel_address", "status", "managed_by", "assigned_user_id", "language", "last_message_time", "last_inbound_time", "service_window_end_time", "unanswered", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MANAGED_BY_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_USER_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_INBOUND_TIME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_WINDOW_END_TIME_FIELD_NUMBER: _ClassVar[int]
    UNANSWERED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    client_id: str
    channel: _enums_pb2.CommunicationChannel
    channel_address: str
    status: _enums_pb2.ConversationStatus
    managed_by: _enums_pb2.ConversationManager
    assigned_user_id: str
    language: str
    last_message_time: _timestamp_pb2.Timestamp
    last_inbound_time: _timestamp_pb2.Timestamp
    service_window_end_time: _timestamp_pb2.Timestamp
    unanswered: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., client_id: _Optional[str] = ..., channel: _Optional[_Union[_enums_pb2.CommunicationChannel, str]] = ..., channel_address: _Optional[str] = ..., status: _Optional[_Union[_enums_pb2.ConversationStatus, str]] = ..., managed_by: _Optional[_Union[_enums_pb2.ConversationManager, str]] = ..., assigned_user_id: _Optional[str] = ..., language: _Optional[str] = ..., last_message_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_inbound_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., service_window_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unanswered: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("id", "conversation_id", "direction", "sender", "sender_id", "content", "language", "translated_content", "external_message_id", "status", "error", "read_time", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TRANSLATED_CONTENT_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    conversation_id: str
    direction: _enums_pb2.MessageDirection
    sender: _enums_pb2.MessageSender
    sender_id: str
    content: str
    language: str
    translated_content: str
    external_message_id: str
    status: _enums_pb2.MessageStatus
    error: str
    read_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., direction: _Optional[_Union[_enums_pb2.MessageDirection, str]] = ..., sender: _Optional[_Union[_enums_pb2.MessageSender, str]] = ..., sender_id: _Optional[str] = ..., content: _Optional[str] = ..., language: _Optional[str] = ..., translated_content: _Optional[str] = ..., external_message_id: _Optional[str] = ..., status: _Optional[_Union[_enums_pb2.MessageStatus, str]] = ..., error: _Optional[str] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Handoff(_message.Message):
    __slots__ = ("id", "conversation_id", "from_manager", "to_manager", "assigned_user_id", "handed_off_by", "handed_off_by_user_id", "reason", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_MANAGER_FIELD_NUMBER: _ClassVar[int]
    TO_MANAGER_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_USER_ID_FIELD_NUMBER: _ClassVar[int]
    HANDED_OFF_BY_FIELD_NUMBER: _ClassVar[int]
    HANDED_OFF_BY_USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    conversation_id: str
    from_manager: _enums_pb2.ConversationManager
    to_manager: _enums_pb2.ConversationManager
    assigned_user_id: str
    handed_off_by: _enums_pb2.ConversationManager
    handed_off_by_user_id: str
    reason: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., from_manager: _Optional[_Union[_enums_pb2.ConversationManager, str]] = ..., to_manager: _Optional[_Union[_enums_pb2.ConversationManager, str]] = ..., assigned_user_id: _Optional[str] = ..., handed_off_by: _Optional[_Union[_enums_pb2.ConversationManager, str]] = ..., handed_off_by_user_id: _Optional[str] = ..., reason: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WhatsAppSession(_message.Message):
    __slots__ = ("status", "qr_code", "qr_code_expire_time", "last_connected_time", "last_disconnected_time", "error_message", "update_time", "etag")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    QR_CODE_FIELD_NUMBER: _ClassVar[int]
    QR_CODE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_CONNECTED_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_DISCONNECTED_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    status: _enums_pb2.WhatsAppSessionStatus
    qr_code: str
    qr_code_expire_time: _timestamp_pb2.Timestamp
    last_connected_time: _timestamp_pb2.Timestamp
    last_disconnected_time: _timestamp_pb2.Timestamp
    error_message: str
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, status: _Optional[_Union[_enums_pb2.WhatsAppSessionStatus, str]] = ..., qr_code: _Optional[str] = ..., qr_code_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_connected_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_disconnected_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_message: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("conversation_id", "message_created", "message_updated", "conversation_handed_off", "conversation_updated", "whats_app_session_updated", "resync", "subscribed")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_CREATED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_UPDATED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_HANDED_OFF_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_UPDATED_FIELD_NUMBER: _ClassVar[int]
    WHATS_APP_SESSION_UPDATED_FIELD_NUMBER: _ClassVar[int]
    RESYNC_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message_created: Message
    message_updated: Message
    conversation_handed_off: Handoff
    conversation_updated: Conversation
    whats_app_session_updated: WhatsAppSession
    resync: Resync
    subscribed: Subscribed
    def __init__(self, conversation_id: _Optional[str] = ..., message_created: _Optional[_Union[Message, _Mapping]] = ..., message_updated: _Optional[_Union[Message, _Mapping]] = ..., conversation_handed_off: _Optional[_Union[Handoff, _Mapping]] = ..., conversation_updated: _Optional[_Union[Conversation, _Mapping]] = ..., whats_app_session_updated: _Optional[_Union[WhatsAppSession, _Mapping]] = ..., resync: _Optional[_Union[Resync, _Mapping]] = ..., subscribed: _Optional[_Union[Subscribed, _Mapping]] = ...) -> None: ...

class Subscribed(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Resync(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class GetConversationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListConversationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListConversationsResponse(_message.Message):
    __slots__ = ("conversations", "next_page_token")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[Conversation]
    next_page_token: str
    def __init__(self, conversations: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ArchiveConversationRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class ReopenConversationRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class HandOffConversationRequest(_message.Message):
    __slots__ = ("id", "to", "assigned_user_id", "reason", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    to: _enums_pb2.ConversationManager
    assigned_user_id: str
    reason: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., to: _Optional[_Union[_enums_pb2.ConversationManager, str]] = ..., assigned_user_id: _Optional[str] = ..., reason: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class HandOffConversationResponse(_message.Message):
    __slots__ = ("conversation", "handoff")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    handoff: Handoff
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ..., handoff: _Optional[_Union[Handoff, _Mapping]] = ...) -> None: ...

class ListHandoffsRequest(_message.Message):
    __slots__ = ("conversation_id", "page_size", "page_token")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    page_size: int
    page_token: str
    def __init__(self, conversation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListHandoffsResponse(_message.Message):
    __slots__ = ("handoffs", "next_page_token")
    HANDOFFS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    handoffs: _containers.RepeatedCompositeFieldContainer[Handoff]
    next_page_token: str
    def __init__(self, handoffs: _Optional[_Iterable[_Union[Handoff, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class IngestInboundMessageRequest(_message.Message):
    __slots__ = ("channel", "from_phone", "content", "external_message_id", "sent_time", "contact_name")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FROM_PHONE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_NAME_FIELD_NUMBER: _ClassVar[int]
    channel: _enums_pb2.CommunicationChannel
    from_phone: str
    content: str
    external_message_id: str
    sent_time: _timestamp_pb2.Timestamp
    contact_name: str
    def __init__(self, channel: _Optional[_Union[_enums_pb2.CommunicationChannel, str]] = ..., from_phone: _Optional[str] = ..., content: _Optional[str] = ..., external_message_id: _Optional[str] = ..., sent_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., contact_name: _Optional[str] = ...) -> None: ...

class IngestInboundMessageResponse(_message.Message):
    __slots__ = ("message", "conversation", "client", "duplicate", "client_created")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CREATED_FIELD_NUMBER: _ClassVar[int]
    message: Message
    conversation: Conversation
    client: _crm_pb2.Client
    duplicate: bool
    client_created: bool
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., conversation: _Optional[_Union[Conversation, _Mapping]] = ..., client: _Optional[_Union[_crm_pb2.Client, _Mapping]] = ..., duplicate: _Optional[bool] = ..., client_created: _Optional[bool] = ...) -> None: ...

class SendMessageRequest(_message.Message):
    __slots__ = ("conversation_id", "content", "request_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    content: str
    request_id: str
    def __init__(self, conversation_id: _Optional[str] = ..., content: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateMessageStatusRequest(_message.Message):
    __slots__ = ("external_message_id", "status", "error", "time")
    EXTERNAL_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    external_message_id: str
    status: DeliveryStatus
    error: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, external_message_id: _Optional[str] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., error: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpdateMessageStatusResponse(_message.Message):
    __slots__ = ("message", "applied")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    message: Message
    applied: bool
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., applied: _Optional[bool] = ...) -> None: ...

class ListMessagesRequest(_message.Message):
    __slots__ = ("conversation_id", "page_size", "page_token")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    page_size: int
    page_token: str
    def __init__(self, conversation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMessagesResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetMessageRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("conversation_id",)
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    def __init__(self, conversation_id: _Optional[str] = ...) -> None: ...

class GetWhatsAppSessionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConnectWhatsAppRequest(_message.Message):
    __slots__ = ("etag",)
    ETAG_FIELD_NUMBER: _ClassVar[int]
    etag: str
    def __init__(self, etag: _Optional[str] = ...) -> None: ...

class DisconnectWhatsAppRequest(_message.Message):
    __slots__ = ("etag",)
    ETAG_FIELD_NUMBER: _ClassVar[int]
    etag: str
    def __init__(self, etag: _Optional[str] = ...) -> None: ...

class ReportSessionStateRequest(_message.Message):
    __slots__ = ("status", "qr_code", "qr_code_expire_time", "error_message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    QR_CODE_FIELD_NUMBER: _ClassVar[int]
    QR_CODE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: _enums_pb2.WhatsAppSessionStatus
    qr_code: str
    qr_code_expire_time: _timestamp_pb2.Timestamp
    error_message: str
    def __init__(self, status: _Optional[_Union[_enums_pb2.WhatsAppSessionStatus, str]] = ..., qr_code: _Optional[str] = ..., qr_code_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_message: _Optional[str] = ...) -> None: ...
