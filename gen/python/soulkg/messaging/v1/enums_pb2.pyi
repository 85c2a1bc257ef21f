from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class CommunicationChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMUNICATION_CHANNEL_UNSPECIFIED: _ClassVar[CommunicationChannel]
    COMMUNICATION_CHANNEL_WHATSAPP: _ClassVar[CommunicationChannel]
    COMMUNICATION_CHANNEL_TELEGRAM: _ClassVar[CommunicationChannel]
    COMMUNICATION_CHANNEL_EMAIL: _ClassVar[CommunicationChannel]

class ConversationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONVERSATION_STATUS_UNSPECIFIED: _ClassVar[ConversationStatus]
    CONVERSATION_STATUS_ACTIVE: _ClassVar[ConversationStatus]
    CONVERSATION_STATUS_ARCHIVED: _ClassVar[ConversationStatus]

class ConversationManager(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONVERSATION_MANAGER_UNSPECIFIED: _ClassVar[ConversationManager]
    CONVERSATION_MANAGER_AI: _ClassVar[ConversationManager]
    CONVERSATION_MANAGER_HUMAN: _ClassVar[ConversationManager]

class MessageDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_DIRECTION_UNSPECIFIED: _ClassVar[MessageDirection]
    MESSAGE_DIRECTION_INCOMING: _ClassVar[MessageDirection]
    MESSAGE_DIRECTION_OUTGOING: _ClassVar[MessageDirection]

class MessageSender(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_SENDER_UNSPECIFIED: _ClassVar[MessageSender]
    MESSAGE_SENDER_CLIENT: _ClassVar[MessageSender]
    MESSAGE_SENDER_AI: _ClassVar[MessageSender]
    MESSAGE_SENDER_HUMAN: _ClassVar[MessageSender]

class MessageStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_STATUS_UNSPECIFIED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_PENDING: _ClassVar[MessageStatus]
    MESSAGE_STATUS_SENT: _ClassVar[MessageStatus]
    MESSAGE_STATUS_DELIVERED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_FAILED: _ClassVar[MessageStatus]

class WhatsAppSessionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WHATS_APP_SESSION_STATUS_UNSPECIFIED: _ClassVar[WhatsAppSessionStatus]
    WHATS_APP_SESSION_STATUS_CONNECTING: _ClassVar[WhatsAppSessionStatus]
    WHATS_APP_SESSION_STATUS_CONNECTED: _ClassVar[WhatsAppSessionStatus]
    WHATS_APP_SESSION_STATUS_DISCONNECTED: _ClassVar[WhatsAppSessionStatus]
    WHATS_APP_SESSION_STATUS_ERROR: _ClassVar[WhatsAppSessionStatus]
COMMUNICATION_CHANNEL_UNSPECIFIED: CommunicationChannel
COMMUNICATION_CHANNEL_WHATSAPP: CommunicationChannel
COMMUNICATION_CHANNEL_TELEGRAM: CommunicationChannel
COMMUNICATION_CHANNEL_EMAIL: CommunicationChannel
CONVERSATION_STATUS_UNSPECIFIED: ConversationStatus
CONVERSATION_STATUS_ACTIVE: ConversationStatus
CONVERSATION_STATUS_ARCHIVED: ConversationStatus
CONVERSATION_MANAGER_UNSPECIFIED: ConversationManager
CONVERSATION_MANAGER_AI: ConversationManager
CONVERSATION_MANAGER_HUMAN: ConversationManager
MESSAGE_DIRECTION_UNSPECIFIED: MessageDirection
MESSAGE_DIRECTION_INCOMING: MessageDirection
MESSAGE_DIRECTION_OUTGOING: MessageDirection
MESSAGE_SENDER_UNSPECIFIED: MessageSender
MESSAGE_SENDER_CLIENT: MessageSender
MESSAGE_SENDER_AI: MessageSender
MESSAGE_SENDER_HUMAN: MessageSender
MESSAGE_STATUS_UNSPECIFIED: MessageStatus
MESSAGE_STATUS_PENDING: MessageStatus
MESSAGE_STATUS_SENT: MessageStatus
MESSAGE_STATUS_DELIVERED: MessageStatus
MESSAGE_STATUS_FAILED: MessageStatus
WHATS_APP_SESSION_STATUS_UNSPECIFIED: WhatsAppSessionStatus
WHATS_APP_SESSION_STATUS_CONNECTING: WhatsAppSessionStatus
WHATS_APP_SESSION_STATUS_CONNECTED: WhatsAppSessionStatus
WHATS_APP_SESSION_STATUS_DISCONNECTED: WhatsAppSessionStatus
WHATS_APP_SESSION_STATUS_ERROR: WhatsAppSessionStatus
