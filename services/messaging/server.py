"""messaging's process: `python -m services.messaging.server` (make run starts it).

`register` builds the use cases from the resources and the settings (channel provider,
translator), starts the process's event hub (one LISTEN connection) and the re-sender of
PENDING messages whose sender died, and stops both on shutdown (Resources.on_shutdown).
Tests pass their own provider or translator through the keyword arguments.
"""

from __future__ import annotations

import asyncio
import contextlib

from grpc import aio

from libs.server.bootstrap import Resources, ServiceDefinition, main
from services.messaging import language
from services.messaging.events import EventHub
from services.messaging.policies import POLICIES
from services.messaging.providers import ChannelProvider, build_provider
from services.messaging.service import Conversations, Directory, Events, Messages, Sessions
from services.messaging.servicer import ConversationServicer, MessageServicer, WhatsAppSessionServicer
from services.messaging.translation import Translator, build_translator
from soulkg.messaging.v1 import messaging_pb2, messaging_pb2_grpc


async def register(server: aio.Server, resources: Resources, *, provider: ChannelProvider | None = None,
                   translator: Translator | None = None) -> None:
    settings = resources.settings
    if not settings.database_url:
        raise RuntimeError("messaging listens for events on its own connection: set SOULKG_DATABASE_URL")
    provider = provider or build_provider(settings)
    translator = translator or build_translator(settings)
    await asyncio.to_thread(language.load)

    directory = Directory(resources.clients)
    conversations = Conversations(resources.db, resources.page_tokens, directory)
    messages = Messages(resources.db, resources.page_tokens, directory, provider, translator)
    sessions = Sessions(resources.db, provider)
    events = Events(resources.db)
    events.hub = EventHub(settings.database_url, events.load)
    await events.hub.start()
    resources.on_shutdown.append(events.hub.stop)

    resender = asyncio.create_task(messages.run_resender(), name="messaging-resender")

    async def stop_resender() -> None:
        resender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resender

    resources.on_shutdown.append(stop_resender)

    messaging_pb2_grpc.add_ConversationServiceServicer_to_server(ConversationServicer(conversations), server)
    messaging_pb2_grpc.add_MessageServiceServicer_to_server(MessageServicer(messages, events), server)
    messaging_pb2_grpc.add_WhatsAppSessionServiceServicer_to_server(WhatsAppSessionServicer(sessions), server)


DEFINITION = ServiceDefinition(name="messaging", register=register, policies=POLICIES,
                               file_descriptors=[messaging_pb2.DESCRIPTOR])

if __name__ == "__main__":
    main(DEFINITION)
