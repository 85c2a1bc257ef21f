"""Who may call each messaging method (enforced by the interceptor; see libs/authz.py).

- Managers and admins (any user of the organization) work the inbox: read conversations,
  messages and hand-offs, hand conversations over, archive and reopen them, answer clients
  (as HUMAN), watch the live stream, and may ingest a message by hand.
- The channel adapter (`webhook` service token, one organization) ingests inbound messages,
  reports delivery status and reports the WhatsApp session's state.
- The AI agent (`agents` service token) reads conversations and messages, watches the
  stream, answers clients (as AI, only while the AI manages the conversation) and hands a
  conversation to a human.
- Connecting and disconnecting the organization's WhatsApp number is for admins.
"""

from libs.authz import ADMIN, ANY_USER, SERVICES

_ADAPTER = SERVICES("webhook")
_AGENT = SERVICES("agents")

POLICIES = {
    "soulkg.messaging.v1.ConversationService": {
        "GetConversation": ANY_USER | _AGENT,
        "ListConversations": ANY_USER | _AGENT,
        "ArchiveConversation": ANY_USER,
        "ReopenConversation": ANY_USER,
        "HandOffConversation": ANY_USER | _AGENT,
        "ListHandoffs": ANY_USER | _AGENT,
    },
    "soulkg.messaging.v1.MessageService": {
        "IngestInboundMessage": ANY_USER | _ADAPTER,
        "SendMessage": ANY_USER | _AGENT,
        "UpdateMessageStatus": _ADAPTER,
        "ListMessages": ANY_USER | _AGENT,
        "GetMessage": ANY_USER | _AGENT,
        "StreamEvents": ANY_USER | _AGENT,
    },
    "soulkg.messaging.v1.WhatsAppSessionService": {
        "GetWhatsAppSession": ANY_USER | _ADAPTER,
        "ConnectWhatsApp": ADMIN,
        "DisconnectWhatsApp": ADMIN,
        "ReportSessionState": _ADAPTER,
    },
}
