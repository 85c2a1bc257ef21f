"""Channel providers: what hands an outbound message to WhatsApp (or another channel).

`ChannelProvider` is the interface. A provider:
- `send(message)` delivers one message and returns the channel's id for it (WhatsApp's
  message id, which later delivery reports name). It must be idempotent on
  `message.idempotency_key`: the service re-sends a message whose sender crashed before it
  recorded the outcome, with the same key. A provider whose channel has no idempotency key
  of its own keeps a record of the keys it sent. It raises `ProviderError` when the channel
  refuses the message (stored as FAILED with the text); any other exception is a failure too.
- `start_pairing(organization_id)` begins pairing the organization's WhatsApp number and
  returns the QR code to scan and its expiry.

`RecordingProvider` is the offline default for development and tests: it records every
message it is given and acknowledges it as sent with an id of its own, and it pairs with a
made-up QR code. A WhatsApp Cloud API provider implements the same two methods (POST
/{phone-number-id}/messages with the text; the returned `messages[0].id` is the external id;
its delivery webhooks become UpdateMessageStatus calls) and is selected with
`SOULKG_CHANNEL_PROVIDER` once it exists.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from libs.settings import Settings
from services.messaging.domain import QR_CODE_TTL

log = logging.getLogger("soulkg.messaging.provider")


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: UUID
    message_id: UUID
    idempotency_key: UUID
    channel: str  # CommunicationChannel label: WHATSAPP, ...
    to: str  # the client's address on the channel (an E.164 phone on WhatsApp)
    content: str


@dataclass(frozen=True)
class Pairing:
    qr_code: str
    expires_at: datetime


class ProviderError(Exception):
    """The channel refused the message; the text is stored on the FAILED message."""


class ChannelProvider(Protocol):
    channels: frozenset[str]  # the channels it sends on

    async def send(self, message: OutboundMessage) -> str: ...

    async def start_pairing(self, organization_id: UUID) -> Pairing: ...


@dataclass(frozen=True)
class Recorded:
    external_id: str
    message: OutboundMessage
    at: datetime


class RecordingProvider:
    """Offline: records outbound messages (the latest `keep`) and acknowledges them as sent."""

    channels = frozenset({"WHATSAPP", "TELEGRAM", "EMAIL"})

    def __init__(self, keep: int = 10_000) -> None:
        self.sent: OrderedDict[tuple[UUID, UUID], Recorded] = OrderedDict()  # (org, key) -> record
        self.calls = 0  # send() calls, repeats included
        self._keep = keep

    async def send(self, message: OutboundMessage) -> str:
        self.calls += 1
        key = (message.organization_id, message.idempotency_key)
        if key in self.sent:  # a re-send after a crash: the same message, once
            return self.sent[key].external_id
        external_id = f"rec.{secrets.token_hex(12)}"
        self.sent[key] = Recorded(external_id, message, datetime.now(UTC))
        while len(self.sent) > self._keep:
            self.sent.popitem(last=False)
        log.info("recorded outbound message", extra={"fields": {
            "message_id": str(message.message_id), "channel": message.channel, "external_id": external_id}})
        return external_id

    async def start_pairing(self, organization_id: UUID) -> Pairing:
        return Pairing(f"soulkg-dev-pairing:{secrets.token_urlsafe(18)}", datetime.now(UTC) + QR_CODE_TTL)


def build_provider(settings: Settings) -> ChannelProvider:
    if settings.channel_provider == "recording":
        return RecordingProvider()
    raise SystemExit(f"unknown channel provider {settings.channel_provider!r}")
