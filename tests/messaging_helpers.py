"""Helpers for messaging's tests: a real identity + crm + messaging stack on ephemeral ports,
stubs acting as one caller, tokens for the channel adapter and the AI agent."""

from __future__ import annotations

import asyncio
import functools
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from grpc import aio

from libs.server.bootstrap import Resources, RunningServer, start_server
from libs.settings import Settings
from libs.tenancy.tokens import TokenVerifier, load_public_keys, load_signer
from services.messaging import server as messaging_server
from services.messaging.events import EventHub
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.messaging.v1 import enums_pb2 as enums
from soulkg.messaging.v1 import messaging_pb2 as pb
from soulkg.messaging.v1 import messaging_pb2_grpc as pb_grpc
from tests.identity_helpers import Account

WHATSAPP = enums.COMMUNICATION_CHANNEL_WHATSAPP


def phone() -> str:
    return "+99677" + str(secrets.randbelow(10**7)).zfill(7)  # not new_phone()'s +99655: its own range


def external_id() -> str:
    return f"wamid.{secrets.token_hex(10)}"


def service_token(keys_dir: Path, account: Account, service: str) -> str:
    token, _ = load_signer(keys_dir).issue(organization_id=uuid.UUID(account.organization.id),
                                           subject=f"service:{service}", kind="service")
    return token


@dataclass
class Stack:
    """identity, crm and one or more messaging servers, each with its own role's pool (the
    conftest's service_dbs), messaging told where the others listen."""

    service_dbs: dict
    keys_dir: Path
    database_url: str  # messaging's own role's URL (its event hub's LISTEN connection)
    identity: RunningServer | None = None
    crm: RunningServer | None = None
    messaging: list[RunningServer] = field(default_factory=list)

    def settings(self) -> Settings:
        return Settings(keys_dir=self.keys_dir, database_url=self.database_url, default_call_timeout_seconds=10,
                        service_addresses={"crm": f"127.0.0.1:{self.crm.port}",
                                           "identity": f"127.0.0.1:{self.identity.port}"})

    def resources(self, service: str, settings: Settings | None = None) -> Resources:
        return Resources(db=self.service_dbs[service], verifier=TokenVerifier(load_public_keys(self.keys_dir)),
                         settings=settings or self.settings())

    async def start(self) -> Stack:
        from services.crm.server import DEFINITION as CRM
        from services.identity.server import DEFINITION as IDENTITY

        self.identity = await start_server(IDENTITY, self.resources("identity", Settings(keys_dir=self.keys_dir)))
        self.crm = await start_server(CRM, self.resources("crm", Settings(keys_dir=self.keys_dir)))
        return self

    async def start_messaging(self, **register_kwargs) -> RunningServer:
        """A messaging server built by its own register (a provider or translator may be given)."""
        from dataclasses import replace

        definition = replace(messaging_server.DEFINITION,
                             register=functools.partial(messaging_server.register, **register_kwargs))
        running = await start_server(definition, self.resources("messaging"))
        self.messaging.append(running)
        return running

    async def stop_messaging(self, running: RunningServer) -> None:
        await running.stop(0)
        await running.resources.clients.close()
        self.messaging.remove(running)

    async def stop(self) -> None:
        for running in list(self.messaging):
            await self.stop_messaging(running)
        for running in (self.crm, self.identity):
            if running is not None:
                await running.stop(0)


def hub_of(running: RunningServer) -> EventHub:
    """The event hub a messaging server registered (its stop is a shutdown callback)."""
    return next(callback.__self__ for callback in running.resources.on_shutdown
                if isinstance(getattr(callback, "__self__", None), EventHub))


class Caller:
    """messaging's stubs (and crm's) acting as one caller."""

    def __init__(self, channel: aio.Channel, token: str, crm_channel: aio.Channel | None = None,
                 account: Account | None = None) -> None:
        self.metadata = [("authorization", f"Bearer {token}")]
        self.account = account
        self._stubs = [pb_grpc.ConversationServiceStub(channel), pb_grpc.MessageServiceStub(channel),
                       pb_grpc.WhatsAppSessionServiceStub(channel)]
        self._crm = crm_pb2_grpc.ClientServiceStub(crm_channel) if crm_channel else None
        self.channel = channel

    def __getattr__(self, name):
        for stub in self._stubs:
            if hasattr(stub, name):
                method = getattr(stub, name)
                # A deadline on every unary call: a lost answer fails the test instead of hanging it.
                return lambda request, **kwargs: method(request, metadata=self.metadata,
                                                        **{"timeout": 30, **kwargs})
        raise AttributeError(name)

    def stream(self, conversation_id: str | None = None, **kwargs):
        request = pb.StreamEventsRequest(conversation_id=conversation_id) if conversation_id \
            else pb.StreamEventsRequest()
        return self._stubs[1].StreamEvents(request, metadata=self.metadata, **kwargs)

    async def ingest(self, from_phone: str | None = None, content: str = "Hello, do you have tours in July?",
                     external_message_id: str | None = None, **fields) -> pb.IngestInboundMessageResponse:
        return await self.IngestInboundMessage(pb.IngestInboundMessageRequest(
            channel=WHATSAPP, from_phone=from_phone or phone(), content=content,
            external_message_id=external_message_id or external_id(), **fields))

    async def send(self, conversation_id: str, content: str = "Hello from us", **fields) -> pb.Message:
        return await self.SendMessage(pb.SendMessageRequest(conversation_id=conversation_id, content=content,
                                                            **fields))

    async def hand_off(self, conversation_id: str, to, **fields) -> pb.HandOffConversationResponse:
        return await self.HandOffConversation(pb.HandOffConversationRequest(id=conversation_id, to=to, **fields))

    async def crm_clients(self, **request) -> list[crm_pb2.Client]:
        reply = await self._crm.ListClients(crm_pb2.ListClientsRequest(page_size=1000, **request),
                                            metadata=self.metadata)
        return list(reply.clients)

    async def all_messages(self, conversation_id: str, page_size: int = 50) -> list[pb.Message]:
        messages, token = [], ""
        while True:
            page = await self.ListMessages(pb.ListMessagesRequest(conversation_id=conversation_id,
                                                                  page_size=page_size, page_token=token))
            messages += page.messages
            token = page.next_page_token
            if not token:
                return messages


async def next_events(call, count: int, timeout: float = 5.0) -> list[pb.Event]:
    """The next `count` events of a stream (TimeoutError if they do not come)."""
    events = []
    async with asyncio.timeout(timeout):
        while len(events) < count:
            events.append(await call.read())
    return events


async def subscribed(call):
    """Wait until the server has subscribed the stream (its first event says so)."""
    first = await asyncio.wait_for(call.read(), 5)
    assert first.WhichOneof("kind") == "subscribed", first
    return call
