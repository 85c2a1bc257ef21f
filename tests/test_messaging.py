"""messaging over real gRPC against real PostgreSQL, with real identity and crm servers:
ingestion (idempotent, racing, creating the client through crm), sending (who may, the
24-hour window, the provider, crash recovery), delivery reports, hand-offs, conversations,
the live event stream, the WhatsApp session, and isolation between organizations."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from google.protobuf import timestamp_pb2
from grpc import aio

from services.messaging import events as events_module
from services.messaging.providers import ProviderError, RecordingProvider
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc
from soulkg.messaging.v1 import enums_pb2 as enums
from soulkg.messaging.v1 import messaging_pb2 as pb
from tests.helpers import error_info, field_violations, rpc_error
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


def reason(error: aio.AioRpcError) -> str:
    return error_info(error).reason


PROVIDER = RecordingProvider()  # shared by every messaging server of this module


@pytest.fixture(scope="module")
async def servers(service_dbs, keys_dir, database):
    """identity, crm and messaging of this module's own (messaging with the shared PROVIDER)."""
    servers = await Stack(service_dbs, keys_dir, database.service("messaging")).start()
    await servers.start_messaging(provider=PROVIDER)
    yield servers
    await servers.stop()


@pytest.fixture(scope="module")
async def channels(servers):
    identity = aio.insecure_channel(f"127.0.0.1:{servers.identity.port}")
    crm = aio.insecure_channel(f"127.0.0.1:{servers.crm.port}")
    messaging = aio.insecure_channel(f"127.0.0.1:{servers.messaging[0].port}")
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


@pytest.fixture(scope="module")
async def org(channels, keys_dir) -> Org:
    """Organization A, shared by the tests whose assertions do not depend on its other data."""
    return await new_org(channels, keys_dir, "msg-a")


@pytest.fixture(scope="module")
async def other(channels, keys_dir) -> Org:
    return await new_org(channels, keys_dir, "msg-b")


@pytest.fixture
async def fresh(channels, keys_dir) -> Org:
    """An organization of the test's own (for counts, settings, the session, deactivations)."""
    return await new_org(channels, keys_dir, "msg-f")


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


async def test_a_provider_failure_stores_failed_with_the_error(servers, org, keys_dir):
    running = await servers.start_messaging(provider=FailingProvider())
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            webhook = Caller(channel, service_token(keys_dir, org.admin_account, "webhook"))
            agent = Caller(channel, service_token(keys_dir, org.admin_account, "agents"))
            reply = await webhook.ingest()
            failed = await agent.send(reply.conversation.id, "hello")
            assert failed.status == S.MESSAGE_STATUS_FAILED and failed.error == "recipient is not on WhatsApp"
            assert not failed.HasField("external_message_id")
    finally:
        await servers.stop_messaging(running)


class StuckProvider(RecordingProvider):
    """Accepts the call and never answers: the process 'crashes' while sending."""

    async def send(self, message):
        self.calls += 1
        await asyncio.Event().wait()


async def test_a_message_left_pending_by_a_crash_is_sent_exactly_once_after_a_restart(servers, org, keys_dir,
                                                                                     database, monkeypatch):
    # Every recording provider of this process counts its sends (other messaging servers of the
    # test session, whose re-senders scan every organization, could be the one that sends it).
    sends: Counter = Counter()
    original_send = RecordingProvider.send

    async def counted_send(self, message):
        sends[str(message.message_id)] += 1
        return await original_send(self, message)

    monkeypatch.setattr(RecordingProvider, "send", counted_send)
    crashing = await servers.start_messaging(provider=StuckProvider())
    async with aio.insecure_channel(f"127.0.0.1:{crashing.port}") as channel:
        agent = Caller(channel, service_token(keys_dir, org.admin_account, "agents"))
        reply = await org.webhook.ingest()
        error = await rpc_error(agent.SendMessage(pb.SendMessageRequest(
            conversation_id=reply.conversation.id, content="sent after the crash"), timeout=0.5))
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await servers.stop_messaging(crashing)  # the crash: the message stays PENDING
    [pending] = [m for m in await org.admin.all_messages(reply.conversation.id)
                 if m.direction == enums.MESSAGE_DIRECTION_OUTGOING]
    assert pending.status == S.MESSAGE_STATUS_PENDING
    with psycopg.connect(database.admin) as conn:  # its sender's lease runs out
        conn.execute("update messages set send_claimed_until = now() - interval '1 second' where id = %s",
                     (pending.id,))
    restarted = [await servers.start_messaging(provider=PROVIDER) for _ in range(2)]  # two processes race
    try:
        for _ in range(100):
            message = await org.admin.GetMessage(pb.GetMessageRequest(id=pending.id))
            if message.status != S.MESSAGE_STATUS_PENDING:
                break
            await asyncio.sleep(0.05)
        assert message.status == S.MESSAGE_STATUS_SENT and message.external_message_id.startswith("rec.")
        assert sends[pending.id] == 1
    finally:
        for running in restarted:
            await servers.stop_messaging(running)


# --- delivery reports --------------------------------------------------------------------------

async def _sent_message(org: Org) -> pb.Message:
    reply = await org.webhook.ingest()
    return await org.agent.send(reply.conversation.id, "Our July tours: ...")


async def report(org: Org, message: pb.Message, status, **fields) -> pb.UpdateMessageStatusResponse:
    return await org.webhook.UpdateMessageStatus(pb.UpdateMessageStatusRequest(
        external_message_id=message.external_message_id, status=status, **fields))


REPORTS = [D.DELIVERY_STATUS_SENT, D.DELIVERY_STATUS_DELIVERED, D.DELIVERY_STATUS_READ, D.DELIVERY_STATUS_FAILED]


@pytest.mark.parametrize("order", list(itertools.permutations(REPORTS)),
                         ids=lambda order: "-".join(D.Name(r).removeprefix("DELIVERY_STATUS_") for r in order))
async def test_the_status_only_moves_forward_whatever_the_order_of_reports(org, order):
    message = await _sent_message(org)
    assert message.status == S.MESSAGE_STATUS_SENT
    for status in order:  # never an error, whatever comes when
        await report(org, message, status, error="undeliverable" if status == D.DELIVERY_STATUS_FAILED else "")
    failed_first = order.index(D.DELIVERY_STATUS_FAILED) < min(order.index(D.DELIVERY_STATUS_DELIVERED),
                                                               order.index(D.DELIVERY_STATUS_READ))
    final = await org.admin.GetMessage(pb.GetMessageRequest(id=message.id))
    if failed_first:  # FAILED from SENT is final; later reports are ignored
        assert final.status == S.MESSAGE_STATUS_FAILED and final.error == "undeliverable"
        assert not final.HasField("read_time")
    else:  # DELIVERED (READ implies it); a FAILED after delivery is ignored
        assert final.status == S.MESSAGE_STATUS_DELIVERED and final.HasField("read_time")
        assert not final.HasField("error")
    for status in order:  # replaying the whole sequence changes nothing
        assert not (await report(org, message, status)).applied
    assert await org.admin.GetMessage(pb.GetMessageRequest(id=message.id)) == final


async def test_read_keeps_the_first_read_time_and_reports_say_whether_they_applied(org):
    message = await _sent_message(org)
    first_read = datetime.now(UTC) - timedelta(minutes=5)
    applied = await report(org, message, D.DELIVERY_STATUS_READ, time=ts(first_read))
    assert applied.applied and applied.message.status == S.MESSAGE_STATUS_DELIVERED
    assert abs(applied.message.read_time.ToDatetime(tzinfo=UTC) - first_read) < timedelta(milliseconds=1)
    late = await report(org, message, D.DELIVERY_STATUS_READ, time=ts(datetime.now(UTC)))
    assert not late.applied and late.message.read_time == applied.message.read_time
    assert not (await report(org, message, D.DELIVERY_STATUS_DELIVERED)).applied


async def test_reports_for_unknown_or_inbound_messages(org):
    error = await rpc_error(org.webhook.UpdateMessageStatus(pb.UpdateMessageStatusRequest(
        external_message_id="wamid.unknown", status=D.DELIVERY_STATUS_DELIVERED)))
    assert error.code() == grpc.StatusCode.NOT_FOUND and reason(error) == "MESSAGE_NOT_FOUND"
    inbound = (await org.webhook.ingest()).message
    ignored = await report(org, inbound, D.DELIVERY_STATUS_FAILED)
    assert not ignored.applied and ignored.message.status == S.MESSAGE_STATUS_DELIVERED
    error = await rpc_error(org.webhook.UpdateMessageStatus(pb.UpdateMessageStatusRequest(
        external_message_id=inbound.external_message_id)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "status" in field_violations(error)


# --- hand-offs and conversations ---------------------------------------------------------------

async def test_handoffs_are_recorded_with_who_when_why_and_to_whom(org):
    conversation = (await org.webhook.ingest()).conversation
    by_ai = await org.agent.hand_off(conversation.id, HUMAN, reason="wants to talk to a person")
    assert by_ai.conversation.managed_by == HUMAN and not by_ai.conversation.HasField("assigned_user_id")
    assert (by_ai.handoff.from_manager, by_ai.handoff.to_manager, by_ai.handoff.handed_off_by) == (AI, HUMAN, AI)
    taken = await org.manager.hand_off(conversation.id, HUMAN, reason="I take it")
    assert taken.conversation.assigned_user_id == org.manager_account.user.id
    assert taken.handoff.handed_off_by == HUMAN and taken.handoff.handed_off_by_user_id == org.manager_account.user.id
    reassigned = await org.manager.hand_off(conversation.id, HUMAN, assigned_user_id=org.admin_account.user.id,
                                            reason="the owner handles VIPs")
    assert reassigned.conversation.assigned_user_id == org.admin_account.user.id
    back = await org.admin.hand_off(conversation.id, AI, reason="booked; the AI follows up")
    assert back.conversation.managed_by == AI and not back.conversation.HasField("assigned_user_id")
    listed = await org.manager.ListHandoffs(pb.ListHandoffsRequest(conversation_id=conversation.id, page_size=2))
    assert [h.id for h in listed.handoffs] == [back.handoff.id, reassigned.handoff.id]
    rest = await org.manager.ListHandoffs(pb.ListHandoffsRequest(conversation_id=conversation.id, page_size=2,
                                                                 page_token=listed.next_page_token))
    assert [h.reason for h in rest.handoffs] == ["I take it", "wants to talk to a person"]
    assert not rest.next_page_token


async def test_handoff_rules(fresh, other, channels):
    conversation = (await fresh.webhook.ingest()).conversation
    cases = [
        (fresh.agent.hand_off(conversation.id, AI), grpc.StatusCode.PERMISSION_DENIED, "AI_CANNOT_TAKE_OVER"),
        (fresh.manager.hand_off(conversation.id, AI), grpc.StatusCode.FAILED_PRECONDITION, "HANDOFF_UNCHANGED"),
        (fresh.manager.hand_off(conversation.id, enums.CONVERSATION_MANAGER_UNSPECIFIED),
         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (fresh.manager.hand_off(conversation.id, AI, assigned_user_id=fresh.manager_account.user.id),
         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (fresh.agent.hand_off(conversation.id, HUMAN, assigned_user_id=fresh.manager_account.user.id),
         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (fresh.manager.hand_off(conversation.id, HUMAN, assigned_user_id=other.manager_account.user.id),
         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (fresh.manager.hand_off(conversation.id, HUMAN, assigned_user_id=str(uuid.uuid4())),
         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (fresh.manager.hand_off(conversation.id, HUMAN, etag="stale"), grpc.StatusCode.ABORTED, "ETAG_MISMATCH"),
    ]
    for pending, code, expected in cases:
        error = await rpc_error(pending)
        assert (error.code(), reason(error)) == (code, expected)
    # A deactivated user cannot be assigned.
    users = identity_pb2_grpc.UserServiceStub(channels[0])
    await users.UpdateUser(identity_pb2.UpdateUserRequest(
        user=identity_pb2.User(id=fresh.manager_account.user.id, is_active=False),
        update_mask={"paths": ["is_active"]}), metadata=fresh.admin.metadata)
    error = await rpc_error(fresh.admin.hand_off(conversation.id, HUMAN, assigned_user_id=fresh.manager_account.user.id))
    assert reason(error) == "ASSIGNEE_INACTIVE"
    handed = await fresh.admin.hand_off(conversation.id, HUMAN, etag=conversation.etag)
    assert handed.conversation.etag != conversation.etag


async def test_archive_and_reopen_keep_one_open_conversation_per_client(org):
    number = phone()
    first = (await org.webhook.ingest(number)).conversation
    archived = await org.manager.ArchiveConversation(pb.ArchiveConversationRequest(id=first.id))
    assert archived.status == enums.CONVERSATION_STATUS_ARCHIVED
    error = await rpc_error(org.agent.send(first.id))
    assert reason(error) == "CONVERSATION_ARCHIVED"
    error = await rpc_error(org.manager.hand_off(first.id, HUMAN))
    assert reason(error) == "CONVERSATION_ARCHIVED"
    second = (await org.webhook.ingest(number, "back again")).conversation  # a new one opens
    assert second.id != first.id and second.client_id == first.client_id
    error = await rpc_error(org.manager.ReopenConversation(pb.ReopenConversationRequest(id=first.id)))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "OPEN_CONVERSATION_EXISTS")
    error = await rpc_error(org.manager.ReopenConversation(pb.ReopenConversationRequest(id=second.id)))
    assert reason(error) == "CONVERSATION_ACTIVE"
    await org.manager.ArchiveConversation(pb.ArchiveConversationRequest(id=second.id, etag=second.etag))
    reopened = await org.manager.ReopenConversation(pb.ReopenConversationRequest(id=first.id))
    assert reopened.status == enums.CONVERSATION_STATUS_ACTIVE
    error = await rpc_error(org.manager.ArchiveConversation(pb.ArchiveConversationRequest(id=first.id,
                                                                                         etag=archived.etag)))
    assert reason(error) == "ETAG_MISMATCH"


async def test_conversations_list_by_latest_activity_with_filters_and_pages(fresh):
    replies = [await fresh.webhook.ingest(content=f"conversation {i}") for i in range(5)]
    await fresh.agent.send(replies[1].conversation.id, "answered")  # now the most recent
    await fresh.manager.hand_off(replies[3].conversation.id, HUMAN)

    async def ids(filter_text: str = "", page_size: int = 2) -> list[str]:
        found, token = [], ""
        while True:
            page = await fresh.manager.ListConversations(pb.ListConversationsRequest(
                filter=filter_text, page_size=page_size, page_token=token))
            found += [c.id for c in page.conversations]
            token = page.next_page_token
            if not token:
                return found

    order = [r.conversation.id for r in replies]
    assert await ids() == [order[1], order[4], order[3], order[2], order[0]]
    assert await ids("unanswered = true") == [order[4], order[3], order[2], order[0]]
    assert await ids("managed_by = HUMAN") == [order[3]]
    assert await ids("managed_by = AI AND unanswered = false") == [order[1]]
    assert await ids(f'client_id = "{replies[2].client.id}"') == [order[2]]
    assert await ids(f'assigned_user_id = "{fresh.manager_account.user.id}"') == [order[3]]
    assert await ids("status = ARCHIVED") == []
    error = await rpc_error(fresh.manager.ListConversations(pb.ListConversationsRequest(filter="nope = 1")))
    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FILTER")
    page = await fresh.manager.ListConversations(pb.ListConversationsRequest(page_size=1))
    error = await rpc_error(fresh.manager.ListConversations(pb.ListConversationsRequest(
        page_size=1, page_token=page.next_page_token, filter="managed_by = AI")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # a token is bound to its query


async def test_messages_list_newest_first_in_keyset_pages(org):
    number = phone()
    first = await org.webhook.ingest(number, "message 0")
    for i in range(1, 7):
        await org.webhook.ingest(number, f"message {i}")
    listed = await org.manager.all_messages(first.conversation.id, page_size=3)
    assert [m.content for m in listed] == [f"message {i}" for i in reversed(range(7))]
    got = await org.manager.GetMessage(pb.GetMessageRequest(id=first.message.id))
    assert got == first.message
    error = await rpc_error(org.manager.ListMessages(pb.ListMessagesRequest(conversation_id=str(uuid.uuid4()))))
    assert reason(error) == "CONVERSATION_NOT_FOUND"


# --- the live stream ---------------------------------------------------------------------------

async def test_the_stream_carries_the_organizations_events_in_order_and_never_anothers(channels, keys_dir):
    # Organizations of this test's own: nothing of theirs was committed before the streams open.
    org, other = await new_org(channels, keys_dir, "stream-a"), await new_org(channels, keys_dir, "stream-b")
    stream_a = await subscribed(org.manager.stream())
    stream_b = await subscribed(other.manager.stream())
    try:
        number = phone()
        ingested = [await org.webhook.ingest(number, f"message {i}") for i in range(5)]
        conversation = ingested[0].conversation.id
        handed = await org.manager.hand_off(conversation, HUMAN, reason="VIP")
        sent = await org.manager.send(conversation, "Hello, I am your manager")
        await org.manager.ArchiveConversation(pb.ArchiveConversationRequest(id=conversation))
        events = await next_events(stream_a, 9)
        kinds = [e.WhichOneof("kind") for e in events]
        assert kinds == ["message_created"] * 5 + ["conversation_handed_off", "message_created", "message_updated",
                                                    "conversation_updated"]
        assert [e.message_created.content for e in events[:5]] == [f"message {i}" for i in range(5)]
        assert events[5].conversation_handed_off.id == handed.handoff.id
        assert events[6].message_created.id == sent.id  # as it is when loaded: PENDING or already SENT
        assert events[7].message_updated.id == sent.id and events[7].message_updated.status == S.MESSAGE_STATUS_SENT
        assert events[8].conversation_updated.status == enums.CONVERSATION_STATUS_ARCHIVED
        assert all(e.conversation_id == conversation for e in events)
        # B saw none of it: its first event is its own.
        marker = await other.webhook.ingest(content="B's own message")
        [first_b] = await next_events(stream_b, 1)
        assert first_b.message_created.id == marker.message.id
    finally:
        stream_a.cancel()
        stream_b.cancel()


async def test_a_stream_of_one_conversation_gets_only_its_events(org, other):
    first = await org.webhook.ingest()
    watched = first.conversation
    stream = await subscribed(org.manager.stream(watched.id))
    try:
        await org.webhook.ingest(content="elsewhere")
        mine = await org.webhook.ingest(watched.channel_address, "here")
        seen = []
        while mine.message.id not in seen:  # (the first message's event may still have been on its way)
            [event] = await next_events(stream, 1)
            assert event.conversation_id == watched.id
            seen.append(event.message_created.id)
        assert set(seen) <= {first.message.id, mine.message.id}
    finally:
        stream.cancel()
    for caller, conversation_id in ((org.manager, str(uuid.uuid4())), (other.manager, watched.id)):
        error = await rpc_error(caller.stream(conversation_id).read())
        assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_slow_subscriber_gets_a_resync_and_holds_up_nobody(servers, org, monkeypatch):
    hub = hub_of(servers.messaging[0])
    organization = uuid.UUID(org.id)
    fast = await hub.subscribe(organization)
    monkeypatch.setattr(events_module, "SUBSCRIBER_QUEUE_SIZE", 3)
    slow = await hub.subscribe(organization)  # room for 3 events, and it reads none
    try:
        number = phone()
        replies = [await org.webhook.ingest(number, f"message {i}") for i in range(10)]
        received = []
        async with asyncio.timeout(5):
            while len(received) < 10:
                event = await fast.get()
                if event.kind != "resync":
                    received.append(event.resource.id)
                else:  # the fast one keeps up: it never needs one
                    pytest.fail("the fast subscriber was told to resync")
        assert received == [uuid.UUID(r.message.id) for r in replies]
        assert slow.pending() <= 3 and slow.dropped > 0
        backlog = [await slow.get() for _ in range(slow.pending())]
        assert backlog[0].kind == "resync" and backlog[0].resync_reason == "SLOW_CONSUMER"
        assert backlog[-1].resource.id == received[-1]  # then it continues with the newest
    finally:
        hub.unsubscribe(slow)
        hub.unsubscribe(fast)


async def test_a_lost_listen_connection_comes_back_and_tells_the_streams_to_resync(servers, org, database):
    hub = hub_of(servers.messaging[0])
    subscription = await hub.subscribe(uuid.UUID(org.id))
    try:
        with psycopg.connect(database.admin, autocommit=True) as conn:
            conn.execute("select pg_terminate_backend(%s)", (hub._connection.get_server_pid(),))
        event = await subscription.get(timeout=10)
        assert (event.kind, event.resync_reason) == ("resync", "NOTIFICATIONS_INTERRUPTED")
        reply = await org.webhook.ingest(content="after the reconnection")
        event = await subscription.get(timeout=5)
        assert event.kind == "message.created" and event.resource.id == uuid.UUID(reply.message.id)
    finally:
        hub.unsubscribe(subscription)


async def test_a_cancelled_stream_unsubscribes_and_shutdown_ends_streams_cleanly(servers, org, keys_dir):
    hub = hub_of(servers.messaging[0])
    before = hub.subscriber_count()
    stream = await subscribed(org.manager.stream())
    assert hub.subscriber_count() == before + 1
    stream.cancel()
    for _ in range(500):
        if hub.subscriber_count() == before:
            break
        await asyncio.sleep(0.01)
    assert hub.subscriber_count() == before

    running = await servers.start_messaging(provider=PROVIDER)
    async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        call = await subscribed(Caller(channel, org.admin_account.access_token).stream())
        stopping = asyncio.ensure_future(running.stop(grace=5))
        assert await call.read() == aio.EOF
        assert await call.code() == grpc.StatusCode.OK
        await stopping
    await running.resources.clients.close()
    servers.messaging.remove(running)


async def test_a_stream_ends_when_its_token_expires(org, keys_dir, channels):
    from libs.tenancy.tokens import load_signer

    token, _ = load_signer(keys_dir).issue(organization_id=uuid.UUID(org.id), subject="service:agents",
                                           kind="service", ttl_seconds=1)
    call = await subscribed(Caller(channels[2], token).stream())
    error = await rpc_error(call.read())
    assert (error.code(), reason(error)) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")


# --- the WhatsApp session ----------------------------------------------------------------------

async def test_the_whatsapp_session_state_machine(fresh, database):
    Status = enums.WhatsAppSessionStatus
    session = await fresh.manager.GetWhatsAppSession(pb.GetWhatsAppSessionRequest())
    assert session.status == Status.WHATS_APP_SESSION_STATUS_DISCONNECTED and not session.etag
    error = await rpc_error(fresh.manager.ConnectWhatsApp(pb.ConnectWhatsAppRequest()))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    connecting = await fresh.admin.ConnectWhatsApp(pb.ConnectWhatsAppRequest())
    assert connecting.status == Status.WHATS_APP_SESSION_STATUS_CONNECTING and connecting.qr_code
    assert connecting.qr_code_expire_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC)

    async def report(status, **fields):
        return await fresh.webhook.ReportSessionState(pb.ReportSessionStateRequest(status=status, **fields))

    refreshed = await report(Status.WHATS_APP_SESSION_STATUS_CONNECTING, qr_code="fresh-qr")
    assert refreshed.qr_code == "fresh-qr"
    connected = await report(Status.WHATS_APP_SESSION_STATUS_CONNECTED)
    assert not connected.HasField("qr_code") and connected.HasField("last_connected_time")
    error = await rpc_error(fresh.admin.ConnectWhatsApp(pb.ConnectWhatsAppRequest()))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_SESSION_TRANSITION")
    assert error_info(error).metadata["from"] == "CONNECTED"
    error = await rpc_error(report(Status.WHATS_APP_SESSION_STATUS_ERROR))
    assert "error_message" in field_violations(error)
    broken = await report(Status.WHATS_APP_SESSION_STATUS_ERROR, error_message="phone offline")
    assert broken.error_message == "phone offline" and broken.HasField("last_disconnected_time")
    error = await rpc_error(fresh.admin.DisconnectWhatsApp(pb.DisconnectWhatsAppRequest(etag="stale")))
    assert reason(error) == "ETAG_MISMATCH"
    disconnected = await fresh.admin.DisconnectWhatsApp(pb.DisconnectWhatsAppRequest(etag=broken.etag))
    assert disconnected.status == Status.WHATS_APP_SESSION_STATUS_DISCONNECTED
    assert not disconnected.HasField("error_message")
    error = await rpc_error(fresh.admin.DisconnectWhatsApp(pb.DisconnectWhatsAppRequest()))
    assert reason(error) == "ILLEGAL_SESSION_TRANSITION"
    # A QR code is shown only until it expires.
    await fresh.admin.ConnectWhatsApp(pb.ConnectWhatsAppRequest())
    with psycopg.connect(database.admin) as conn:
        conn.execute("update whatsapp_sessions set qr_expires_at = now() - interval '1 second'"
                     " where organization_id = %s", (fresh.id,))
    expired = await fresh.manager.GetWhatsAppSession(pb.GetWhatsAppSessionRequest())
    assert expired.status == Status.WHATS_APP_SESSION_STATUS_CONNECTING and not expired.HasField("qr_code")


# --- who may call what, and isolation between organizations ------------------------------------

async def test_each_caller_kind_gets_only_its_methods(org):
    conversation = (await org.webhook.ingest()).conversation
    denied = [
        org.manager.UpdateMessageStatus(pb.UpdateMessageStatusRequest(external_message_id="x", status=1)),
        org.manager.ReportSessionState(pb.ReportSessionStateRequest(status=2)),
        org.webhook.send(conversation.id),
        org.webhook.ListMessages(pb.ListMessagesRequest(conversation_id=conversation.id)),
        org.agent.ingest(),
        org.agent.ArchiveConversation(pb.ArchiveConversationRequest(id=conversation.id)),
        org.agent.ConnectWhatsApp(pb.ConnectWhatsAppRequest()),
    ]
    for pending in denied:
        error = await rpc_error(pending)
        assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")


def isolation_calls(b: Org, a: dict) -> dict:
    """Every method, called by organization B with organization A's ids."""
    conversation, message = a["conversation"], a["message"]
    return {
        "GetConversation": b.manager.GetConversation(pb.GetConversationRequest(id=conversation.id)),
        "ArchiveConversation": b.manager.ArchiveConversation(pb.ArchiveConversationRequest(id=conversation.id)),
        "ReopenConversation": b.manager.ReopenConversation(pb.ReopenConversationRequest(id=conversation.id)),
        "HandOffConversation": b.manager.hand_off(conversation.id, HUMAN),
        "ListHandoffs": b.manager.ListHandoffs(pb.ListHandoffsRequest(conversation_id=conversation.id)),
        "SendMessage": b.manager.send(conversation.id),
        "UpdateMessageStatus": b.webhook.UpdateMessageStatus(pb.UpdateMessageStatusRequest(
            external_message_id=a["sent"].external_message_id, status=D.DELIVERY_STATUS_DELIVERED)),
        "ListMessages": b.manager.ListMessages(pb.ListMessagesRequest(conversation_id=conversation.id)),
        "GetMessage": b.manager.GetMessage(pb.GetMessageRequest(id=message.id)),
        "StreamEvents": b.manager.stream(conversation.id).read(),
    }


async def test_another_organization_sees_and_touches_nothing(fresh, other):
    a_reply = await fresh.webhook.ingest(content="A's secret plans")
    sent = await fresh.agent.send(a_reply.conversation.id, "A's answer")
    a = {"conversation": a_reply.conversation, "message": a_reply.message, "sent": sent}
    for method, pending in isolation_calls(other, a).items():
        error = await rpc_error(pending)
        assert error.code() == grpc.StatusCode.NOT_FOUND, method
    # Lists, ingestion and the session are B's own.
    listed = await other.manager.ListConversations(pb.ListConversationsRequest())
    assert a_reply.conversation.id not in {c.id for c in listed.conversations}
    b_reply = await other.webhook.ingest(a_reply.conversation.channel_address, "same phone, same id",
                                         a_reply.message.external_message_id)
    assert not b_reply.duplicate and b_reply.client_created and b_reply.client.id != a_reply.client.id
    await fresh.admin.ConnectWhatsApp(pb.ConnectWhatsAppRequest())
    b_session = await other.manager.GetWhatsAppSession(pb.GetWhatsAppSessionRequest())
    assert b_session.status == enums.WHATS_APP_SESSION_STATUS_DISCONNECTED
    # A's data is unchanged.
    assert (await fresh.manager.GetMessage(pb.GetMessageRequest(id=sent.id))).status == S.MESSAGE_STATUS_SENT
    assert (await fresh.manager.GetConversation(pb.GetConversationRequest(id=a_reply.conversation.id))).managed_by == AI


def test_the_isolation_test_covers_every_method():
    from types import SimpleNamespace

    class Anything:
        def __getattr__(self, name):
            return lambda *args, **kwargs: SimpleNamespace(read=lambda: None)

    fake = SimpleNamespace(manager=Anything(), webhook=Anything())
    ids = SimpleNamespace(id="x", external_message_id="x")
    calls = isolation_calls(fake, {"conversation": ids, "message": ids, "sent": ids})
    for pending in calls.values():
        if hasattr(pending, "close"):
            pending.close()
    every = {m.name for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods}
    own_only = {"ListConversations", "IngestInboundMessage", "GetWhatsAppSession", "ConnectWhatsApp",
                "DisconnectWhatsApp", "ReportSessionState"}  # no id to steal: checked in the test's second half
    assert set(calls) | own_only == every


# --- translation -------------------------------------------------------------------------------

class FakeTranslator:
    def __init__(self):
        self.calls = []

    async def translate(self, text, source, target):
        self.calls.append((text, source, target))
        return f"[{source}->{target}] {text}"


async def test_messages_in_another_language_are_translated_for_the_managers(servers, fresh, keys_dir, channels):
    organizations = identity_pb2_grpc.OrganizationServiceStub(channels[0])
    settings = identity_pb2.Organization()
    settings.settings.update({"working_language": "en"})
    await organizations.UpdateOrganization(identity_pb2.UpdateOrganizationRequest(
        organization=settings, update_mask={"paths": ["settings"]}), metadata=fresh.admin.metadata)
    translator = FakeTranslator()
    running = await servers.start_messaging(provider=PROVIDER, translator=translator)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            webhook = Caller(channel, service_token(keys_dir, fresh.admin_account, "webhook"))
            russian = await webhook.ingest(content="Здравствуйте, сколько стоит тур на Иссык-Куль?")
            assert russian.message.translated_content == \
                "[ru->en] Здравствуйте, сколько стоит тур на Иссык-Куль?"
            english = await webhook.ingest(content="Hello, how much is the Issyk-Kul tour?")
            assert not english.message.HasField("translated_content")
            assert translator.calls == [("Здравствуйте, сколько стоит тур на Иссык-Куль?", "ru", "en")]
            stored = await fresh.manager.GetMessage(pb.GetMessageRequest(id=russian.message.id))
            assert stored.translated_content == russian.message.translated_content
    finally:
        await servers.stop_messaging(running)


def test_the_libretranslate_translator_speaks_its_http_protocol():
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from services.messaging.translation import LibreTranslateTranslator

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body))
            reply = json.dumps({"translatedText": "Hello"} if body["q"] != "fail" else {"error": "no"}).encode()
            self.send_response(200 if body["q"] != "fail" else 400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        translator = LibreTranslateTranslator(f"http://127.0.0.1:{server.server_port}/", api_key="k")
        assert asyncio.run(translator.translate("Здравствуйте", "ru", "en")) == "Hello"
        assert seen == [("/translate", {"q": "Здравствуйте", "source": "ru", "target": "en", "format": "text",
                                        "api_key": "k"})]
        assert asyncio.run(translator.translate("fail", "ru", "en")) is None  # a failure is no translation
    finally:
        server.shutdown()
