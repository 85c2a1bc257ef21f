"""messaging's process: `python -m services.messaging.server` (make run starts it).

`register` builds the use cases from the resources and the settings (channel provider,
translator), starts the process's event hub (one LISTEN connection) and the re-sender of
PENDING messages whose sender died, and stops both on shutdown (Resources.on_shutdown).
Tests pass their own provider or translator through the keyword arguments.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from grpc import aio

from libs.server.bootstrap import Resources, ServiceDefinition, main
from libs.settings import Settings
from libs.tenancy.database import TenantDatabase
from services.messaging import language
from services.messaging.events import Connect, EventHub
from services.messaging.policies import POLICIES
from services.messaging.providers import ChannelProvider, build_provider
from services.messaging.service import Conversations, Directory, Events, Messages, Sessions
from services.messaging.servicer import ConversationServicer, MessageServicer, WhatsAppSessionServicer
from services.messaging.translation import Translator, build_translator
from soulkg.messaging.v1 import messaging_pb2, messaging_pb2_grpc


def listen_connection(settings: Settings, db: TenantDatabase) -> Connect:
    """How the event hub opens its one LISTEN connection: a new connection (never one of the
    request pool's) to the service's database URL, or, for a server built without one (tests
    build servers in process from a pool), to the pool's own server as the pool's own role."""
    if settings.database_url:
        return lambda: asyncpg.connect(settings.database_url)
    pool = db.pool
    return lambda: asyncpg.connect(*pool._connect_args, **pool._connect_kwargs)


async def register(server: aio.Server, resources: Resources, *, provider: ChannelProvider | None = None,
                   translator: Translator | None = None) -> None:
    settings = resources.settings
    provider = provider or build_provider(settings)
    translator = translator or build_translator(settings)
    await asyncio.to_thread(language.load)

    directory = Directory(resources.clients)
    conversations = Conversations(resources.db, resources.page_tokens, directory)
    messages = Messages(resources.db, resources.page_tokens, directory, provider, translator)
    sessions = Sessions(resources.db, provider)
    events = Events(resources.db)
    events.hub = EventHub(listen_connection(settings, resources.db), events.load)
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
