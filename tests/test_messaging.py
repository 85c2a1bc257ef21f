"""messaging over real gRPC against real PostgreSQL, with real identity and crm servers:
ingestion (idempotent, racing, creating the client through crm), sending (who may, the
24-hour window, the provider, crash recovery), delivery reports, hand-offs, conversations,
the live event stream, the WhatsApp session, and isolation between organizations."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from google.protobuf import timestamp_pb2
from grpc import aio

from services.messaging import events as events_module
from services.messaging.providers import ProviderError, RecordingProvider
from soulkg.crm.v1 import crm_pb2
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc
from soulkg.messaging.v1 import enums_pb2 as enums
from soulkg.messaging.v1 import messaging_pb2 as pb
from tests.helpers import error_info, field_violations
from tests.identity_helpers import add_user, sign_up
from tests.messaging_helpers import (
    WHATSAPP,
    Caller,
    Stack,
    external_id,
    hub_of,
    next_events,
    phone,
    service_token,
    subscribed,
)

AI, HUMAN = enums.CONVERSATION_MANAGER_AI, enums.CONVERSATION_MANAGER_HUMAN
D = pb.DeliveryStatus
S = enums.MessageStatus


def ts(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


async def rpc_error(awaitable) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await awaitable
    return caught.value


def reason(error: aio.AioRpcError) -> str:
    return error_info(error).reason


PROVIDER = RecordingProvider()  # shared by every messaging server of this module


@pytest.fixture(scope="module")
async def stack(app_db, keys_dir, database):
    stack = await Stack(app_db, keys_dir, database.app).start()
    await stack.start_messaging(provider=PROVIDER)
    yield stack
    await stack.stop()


@pytest.fixture(scope="module")
async def channels(stack):
    identity = aio.insecure_channel(f"127.0.0.1:{stack.identity.port}")
    crm = aio.insecure_channel(f"127.0.0.1:{stack.crm.port}")
    messaging = aio.insecure_channel(f"127.0.0.1:{stack.messaging[0].port}")
    yield identity, crm, messaging
    for channel in (identity, crm, messaging):
        await channel.close()


class Org:
    """One organization: its admin, a manager, the channel adapter and the AI agent."""

    def __init__(self, admin, manager, channels, keys_dir):
        _, crm, messaging = channels
        self.admin_account, self.manager_account = admin, manager
        self.admin = Caller(messaging, admin.access_token, crm, admin)
        self.manager = Caller(messaging, manager.access_token, crm, manager)
        self.webhook = Caller(messaging, service_token(keys_dir, admin, "webhook"), crm)
        self.agent = Caller(messaging, service_token(keys_dir, admin, "agents"), crm)
        self.id = admin.organization.id


async def new_org(channels, keys_dir, label: str) -> Org:
    identity = channels[0]
    admin = await sign_up(identity, label)
    manager = await add_user(identity, admin)
    return Org(admin, manager, channels, keys_dir)


@pytest.fixture
async def org(channels, keys_dir) -> Org:
    return await new_org(channels, keys_dir, "msg-a")


@pytest.fixture
async def other(channels, keys_dir) -> Org:
    return await new_org(channels, keys_dir, "msg-b")


# --- ingestion ---------------------------------------------------------------------------------

async def test_a_new_phone_creates_one_client_in_crm_a_conversation_and_the_message(org):
    number = phone()
    reply = await org.webhook.ingest(number, "Здравствуйте, интересует тур на Иссык-Куль для семьи",
                                     contact_name="Ivan")
    assert not reply.duplicate and reply.client_created
    assert reply.client.phone == number and reply.client.first_name == "Ivan"
    assert reply.client.preferred_language == "ru"
    message, conversation = reply.message, reply.conversation
    assert (message.direction, message.sender, message.status) == (
        enums.MESSAGE_DIRECTION_INCOMING, enums.MESSAGE_SENDER_CLIENT, S.MESSAGE_STATUS_DELIVERED)
    assert message.language == "ru" and message.conversation_id == conversation.id
    assert conversation.client_id == reply.client.id and conversation.channel == WHATSAPP
    assert conversation.managed_by == AI and conversation.status == enums.CONVERSATION_STATUS_ACTIVE
    assert conversation.channel_address == number and conversation.unanswered
    assert conversation.last_inbound_time == message.create_time == conversation.last_message_time
    window = conversation.service_window_end_time.ToDatetime() - conversation.last_inbound_time.ToDatetime()
    assert window == timedelta(hours=24)
    # crm, through its own API, has exactly this one client for the phone.
    clients = await org.admin.crm_clients(filter=f'search = "{number}"')
    assert [c.id for c in clients] == [reply.client.id]


async def test_a_known_phone_reuses_the_client_and_its_open_conversation(org):
    number = phone()
    first = await org.webhook.ingest(number, "Hi! Do you have weekend trips in March?")
    second = await org.webhook.ingest(number, "And in April?")
    assert not second.client_created and second.client.id == first.client.id
    assert second.conversation.id == first.conversation.id
    assert second.conversation.last_message_time.ToDatetime() >= first.conversation.last_message_time.ToDatetime()


async def test_a_repeated_delivery_returns_the_stored_message(org):
    message_id = external_id()
    first = await org.webhook.ingest(phone(), "Hello", message_id)
    again = await org.webhook.ingest(phone(), "Hello again, different body", message_id)
    assert again.duplicate and again.message == first.message
    assert again.conversation.id == first.conversation.id and again.client.id == first.client.id


async def test_twenty_racing_deliveries_of_one_id_store_one_message_one_conversation_one_client(org, database):
    number, message_id = phone(), external_id()
    replies = await asyncio.gather(*[org.webhook.ingest(number, "Salam! Tours in July?", message_id)
                                     for _ in range(20)])
    assert len({r.message.id for r in replies}) == 1
    assert len({r.conversation.id for r in replies}) == 1
    assert sum(not r.duplicate for r in replies) == 1
    assert sum(r.client_created for r in replies) == 1
    assert len(await org.admin.crm_clients(filter=f'search = "{number}"')) == 1
    with psycopg.connect(database.admin) as conn:
        counts = conn.execute(
            "select (select count(*) from messages where organization_id = %(o)s and whatsapp_message_id = %(m)s),"
            " (select count(*) from conversations where organization_id = %(o)s and channel_address = %(p)s)",
            {"o": org.id, "m": message_id, "p": number}).fetchone()
    assert counts == (1, 1)


async def test_racing_first_messages_from_one_phone_share_one_conversation(org):
    number = phone()
    replies = await asyncio.gather(*[org.webhook.ingest(number, f"message {i}") for i in range(10)])
    assert len({r.conversation.id for r in replies}) == 1
    assert len({r.message.id for r in replies}) == 10
    assert len(await org.admin.crm_clients(filter=f'search = "{number}"')) == 1


@pytest.mark.parametrize("fields,violations", [
    ({"channel": enums.COMMUNICATION_CHANNEL_UNSPECIFIED}, {"channel"}),
    ({"channel": enums.COMMUNICATION_CHANNEL_EMAIL}, {"channel"}),
    ({"from_phone": "0555"}, {"from_phone"}),
    ({"content": "   "}, {"content"}),
    ({"content": "x" * 4097}, {"content"}),
    ({"external_message_id": ""}, {"external_message_id"}),
    ({"from_phone": "nope", "content": "", "external_message_id": ""},
     {"from_phone", "content", "external_message_id"}),
])
async def test_bad_inbound_messages_are_invalid_with_every_violation(org, fields, violations):
    request = {"channel": WHATSAPP, "from_phone": phone(), "content": "Hi", "external_message_id": external_id(),
               **fields}
    error = await rpc_error(org.webhook.IngestInboundMessage(pb.IngestInboundMessageRequest(**request)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error)) == violations


async def test_a_future_sent_time_is_clamped_and_a_past_one_kept(org):
    past = datetime.now(UTC) - timedelta(hours=3)
    reply = await org.webhook.ingest(phone(), "Hello", sent_time=ts(past))
    assert abs(reply.message.create_time.ToDatetime(tzinfo=UTC) - past) < timedelta(milliseconds=1)
    future = await org.webhook.ingest(phone(), "Hello", sent_time=ts(datetime.now(UTC) + timedelta(days=1)))
    assert future.message.create_time.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)


async def test_a_short_ambiguous_message_keeps_the_conversations_language(org):
    number = phone()
    first = await org.webhook.ingest(number, "Саламатсызбы, Ысык-Көлгө тур барбы? Баасы канча?")
    assert first.message.language == "ky"
    thanks = await org.webhook.ingest(number, "Рахмат")  # Kyrgyz, Kazakh and Uzbek alike
    assert thanks.message.language == "ky" and thanks.conversation.language == "ky"
    german = await org.webhook.ingest(number, "Hallo, gibt es auch Touren im März für zwei Personen?")
    assert german.message.language == "de" and german.conversation.language == "de"
    unknown = await org.webhook.ingest(phone(), "ok")
    assert not unknown.message.HasField("language")


async def test_users_may_ingest_too_and_crm_errors_come_back_mapped(org):
    reply = await org.manager.ingest(phone(), "typed in by hand")
    assert reply.client_created


# --- sending -----------------------------------------------------------------------------------

async def test_the_ai_answers_while_it_manages_the_conversation(org):
    reply = await org.webhook.ingest()
    sent = await org.agent.send(reply.conversation.id, "Hello! Which dates suit you?")
    assert (sent.direction, sent.sender, sent.status) == (
        enums.MESSAGE_DIRECTION_OUTGOING, enums.MESSAGE_SENDER_AI, S.MESSAGE_STATUS_SENT)
    assert not sent.HasField("sender_id") and sent.external_message_id.startswith("rec.")
    recorded = [r for r in PROVIDER.sent.values() if str(r.message.message_id) == sent.id]
    assert len(recorded) == 1 and recorded[0].message.to == reply.conversation.channel_address
    assert recorded[0].message.content == "Hello! Which dates suit you?"
    conversation = await org.admin.GetConversation(pb.GetConversationRequest(id=reply.conversation.id))
    assert not conversation.unanswered
    assert conversation.last_message_time == sent.create_time


async def test_the_ai_may_not_send_while_a_human_manages_the_conversation(org):
    reply = await org.webhook.ingest()
    await org.manager.hand_off(reply.conversation.id, HUMAN, reason="asks for a discount")
    error = await rpc_error(org.agent.send(reply.conversation.id, "I can help!"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == "CONVERSATION_MANAGED_BY_HUMAN"
    sent = await org.manager.send(reply.conversation.id, "Hello, this is Bek, your manager")
    assert sent.sender == enums.MESSAGE_SENDER_HUMAN and sent.sender_id == org.manager_account.user.id
    assert [m.id for m in await org.admin.all_messages(reply.conversation.id)] == [sent.id, reply.message.id]


async def test_a_manager_hands_off_before_answering_an_ai_conversation(org):
    reply = await org.webhook.ingest()
    error = await rpc_error(org.manager.send(reply.conversation.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(error) == "CONVERSATION_MANAGED_BY_AI"


@pytest.mark.parametrize("age,allowed", [
    (timedelta(hours=23, minutes=59), True),
    (timedelta(hours=24, seconds=1), False),
    (timedelta(days=3), False),
])
async def test_whatsapps_24_hour_window_at_its_edges(org, age, allowed):
    reply = await org.webhook.ingest(sent_time=ts(datetime.now(UTC) - age))
    if allowed:
        assert (await org.agent.send(reply.conversation.id)).status == S.MESSAGE_STATUS_SENT
        return
    error = await rpc_error(org.agent.send(reply.conversation.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(error) == "OUTSIDE_SERVICE_WINDOW"
    window_end = datetime.fromisoformat(error_info(error).metadata["window_end_time"])
    assert window_end == reply.conversation.service_window_end_time.ToDatetime(tzinfo=UTC)


async def test_the_latest_inbound_message_reopens_the_window(org):
    number = phone()
    old = await org.webhook.ingest(number, sent_time=ts(datetime.now(UTC) - timedelta(days=2)))
    assert (await rpc_error(org.agent.send(old.conversation.id))).code() == grpc.StatusCode.FAILED_PRECONDITION
    await org.webhook.ingest(number, "still there?")
    assert (await org.agent.send(old.conversation.id)).status == S.MESSAGE_STATUS_SENT


async def test_send_is_idempotent_on_the_request_id_even_when_racing(org):
    reply = await org.webhook.ingest()
    request_id = str(uuid.uuid4())
    calls = PROVIDER.calls
    sent = await asyncio.gather(*[org.agent.send(reply.conversation.id, "once", request_id=request_id)
                                  for _ in range(8)])
    assert len({m.id for m in sent}) == 1
    assert PROVIDER.calls - calls == 1
    assert len(await org.admin.all_messages(reply.conversation.id)) == 2


async def test_bad_send_requests(org):
    error = await rpc_error(org.agent.SendMessage(pb.SendMessageRequest(conversation_id="x", content="",
                                                                        request_id="nope")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error)) == {"conversation_id", "content", "request_id"}
    error = await rpc_error(org.agent.send(str(uuid.uuid4())))
    assert error.code() == grpc.StatusCode.NOT_FOUND and reason(error) == "CONVERSATION_NOT_FOUND"


class FailingProvider(RecordingProvider):
    async def send(self, message):
        self.calls += 1
        raise ProviderError("recipient is not on WhatsApp")


async def test_a_provider_failure_stores_failed_with_the_error(stack, org, keys_dir):
    running = await stack.start_messaging(provider=FailingProvider())
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            webhook = Caller(channel, service_token(keys_dir, org.admin_account, "webhook"))
            agent = Caller(channel, service_token(keys_dir, org.admin_account, "agents"))
            reply = await webhook.ingest()
            failed = await agent.send(reply.conversation.id, "hello")
            assert failed.status == S.MESSAGE_STATUS_FAILED and failed.error == "recipient is not on WhatsApp"
            assert not failed.HasField("external_message_id")
    finally:
        await stack.stop_messaging(running)


class StuckProvider(RecordingProvider):
    """Accepts the call and never answers: the process 'crashes' while sending."""

    async def send(self, message):
        self.calls += 1
        await asyncio.Event().wait()


async def test_a_message_left_pending_by_a_crash_is_sent_exactly_once_after_a_restart(stack, org, keys_dir,
                                                                                     database):
    crashing = await stack.start_messaging(provider=StuckProvider())
    async with aio.insecure_channel(f"127.0.0.1:{crashing.port}") as channel:
        agent = Caller(channel, service_token(keys_dir, org.admin_account, "agents"))
        reply = await org.webhook.ingest()
        error = await rpc_error(agent.SendMessage(pb.SendMessageRequest(
            conversation_id=reply.conversation.id, content="sent after the crash"), timeout=1))
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await stack.stop_messaging(crashing)  # the crash: the message stays PENDING
    [pending] = [m for m in await org.admin.all_messages(reply.conversation.id)
                 if m.direction == enums.MESSAGE_DIRECTION_OUTGOING]
    assert pending.status == S.MESSAGE_STATUS_PENDING
    with psycopg.connect(database.admin) as conn:  # its sender's lease runs out
        conn.execute("update messages set send_claimed_until = now() - interval '1 second' where id = %s",
                     (pending.id,))
    calls = PROVIDER.calls
    restarted = [await stack.start_messaging(provider=PROVIDER) for _ in range(2)]  # two processes race
    try:
        for _ in range(100):
            message = await org.admin.GetMessage(pb.GetMessageRequest(id=pending.id))
            if message.status != S.MESSAGE_STATUS_PENDING:
                break
            await asyncio.sleep(0.05)
        assert message.status == S.MESSAGE_STATUS_SENT
        assert PROVIDER.calls - calls == 1
        assert [r.external_id for r in PROVIDER.sent.values() if str(r.message.message_id) == pending.id] == [
            message.external_message_id]
    finally:
        for running in restarted:
            await stack.stop_messaging(running)
