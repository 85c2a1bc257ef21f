"""messaging: conversations, messages, hand-offs, the live inbox, the WhatsApp session (soulkg.messaging.v1)."""
