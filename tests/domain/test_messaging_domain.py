"""messaging's rules without a database: the delivery-status ladder, WhatsApp's 24-hour window
at its edges, hand-offs, the session's state machine, the language of a message, the event
hub's back-pressure."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from libs.tenancy.context import PRINCIPAL_SERVICE, PRINCIPAL_USER, Principal
from services.messaging import domain, language
from services.messaging.domain import (
    AI,
    CONNECTED,
    CONNECTING,
    DELIVERED,
    DISCONNECTED,
    ERROR,
    FAILED,
    HUMAN,
    PENDING,
    READ,
    SENT,
    Conversation,
    Detection,
    Event,
    Message,
    WhatsAppSession,
)
from services.messaging.events import EventHub, Notice, Subscription

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
ORG = uuid.uuid4()
USER = uuid.uuid4()


def user(user_id: uuid.UUID = USER) -> Principal:
    return Principal(ORG, str(user_id), PRINCIPAL_USER, "MANAGER", "t", 0)


def agent() -> Principal:
    return Principal(ORG, "service:agents", PRINCIPAL_SERVICE, None, "t", 0)


def conversation(**fields) -> Conversation:
    values = dict(id=uuid.uuid4(), client_id=uuid.uuid4(), channel="WHATSAPP", channel_address="+996555000001",
                  status="ACTIVE", managed_by=AI, assigned_user_id=None, language=None, last_message_at=NOW,
                  last_inbound_at=NOW - timedelta(hours=1), created_at=NOW, updated_at=NOW)
    return Conversation(**{**values, **fields})


def message(status: str = SENT, **fields) -> Message:
    values = dict(id=uuid.uuid4(), conversation_id=uuid.uuid4(), direction="OUTGOING", sender=AI, sender_id=None,
                  content="hi", language=None, translated_content=None, external_message_id="wamid.1",
                  status=status, error=None, read_at=None, created_at=NOW)
    return Message(**{**values, **fields})


def reason(exc_info) -> str:
    return exc_info.value.reason


# --- the delivery-status ladder ----------------------------------------------------------------

RANK = {PENDING: 0, SENT: 1, DELIVERED: 2}
REPORTS = [SENT, DELIVERED, READ, FAILED]


def replay(start: str, reports) -> tuple[Message, list[bool]]:
    current, applied = message(start), []
    for step, report in enumerate(reports):
        change = domain.delivery_report(current, report, NOW + timedelta(seconds=step), "boom")
        applied.append(change is not None)
        if change is not None:
            current = replace(current, status=change.status, read_at=change.read_at, error=change.error)
    return current, applied


@pytest.mark.parametrize("start", [PENDING, SENT, DELIVERED, FAILED])
def test_every_sequence_of_reports_only_moves_forward(start):
    """All sequences of up to four reports from every status: never a step back, FAILED only
    from PENDING or SENT and then final, one read time, and nothing is ever an error."""
    for length in range(1, 5):
        for reports in itertools.product(REPORTS, repeat=length):
            current, previous = message(start), message(start)
            for step, report in enumerate(reports):
                change = domain.delivery_report(current, report, NOW + timedelta(seconds=step), "boom")
                if change is None:
                    continue
                current = replace(current, status=change.status, read_at=change.read_at, error=change.error)
                if previous.status == FAILED:
                    pytest.fail(f"a FAILED message changed: {start} {reports}")
                if current.status == FAILED:
                    assert previous.status in (PENDING, SENT), (start, reports)
                else:
                    assert RANK[current.status] >= RANK[previous.status], (start, reports)
                if previous.read_at is not None:
                    assert current.read_at == previous.read_at, (start, reports)
                previous = current


@pytest.mark.parametrize("reports,final,read", [
    ([DELIVERED, SENT], DELIVERED, False),
    ([READ, DELIVERED, SENT], DELIVERED, True),
    ([FAILED, DELIVERED, READ], FAILED, False),
    ([DELIVERED, FAILED], DELIVERED, False),
    ([SENT, FAILED, READ], FAILED, False),
    ([READ, FAILED], DELIVERED, True),
])
def test_out_of_order_reports_from_pending(reports, final, read):
    current, _ = replay(PENDING, reports)
    assert current.status == final and (current.read_at is not None) == read


def test_repeated_reports_are_ignored_and_the_first_read_time_kept():
    current, applied = replay(SENT, [DELIVERED, DELIVERED, READ, READ, SENT])
    assert applied == [True, False, True, False, False]
    assert current.read_at == NOW + timedelta(seconds=2)


def test_inbound_messages_take_no_reports():
    assert domain.delivery_report(message(DELIVERED, direction="INCOMING"), FAILED, NOW, None) is None


# --- WhatsApp's 24-hour window -----------------------------------------------------------------

@pytest.mark.parametrize("since,open_", [
    (timedelta(0), True),
    (timedelta(hours=23, minutes=59, seconds=59, microseconds=999999), True),
    (timedelta(hours=24), False),  # the window ends at exactly 24 hours
    (timedelta(hours=24, microseconds=1), False),
    (timedelta(days=30), False),
])
def test_the_window_at_its_edges(since, open_):
    c = conversation(last_inbound_at=NOW - since)
    if open_:
        domain.check_service_window(c, NOW)
        return
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_service_window(c, NOW)
    assert reason(caught) == "OUTSIDE_SERVICE_WINDOW"
    assert caught.value.metadata["window_end_time"] == (NOW - since + timedelta(hours=24)).isoformat()


def test_no_window_without_an_inbound_message_and_none_off_whatsapp():
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_service_window(conversation(last_inbound_at=None), NOW)
    assert caught.value.metadata["window_end_time"] == ""
    domain.check_service_window(conversation(channel="TELEGRAM", last_inbound_at=None), NOW)
    assert conversation(channel="TELEGRAM").service_window_end is None


@pytest.mark.parametrize("sender,managed_by,status,expected", [
    (AI, AI, "ACTIVE", None),
    (HUMAN, HUMAN, "ACTIVE", None),
    (AI, HUMAN, "ACTIVE", "CONVERSATION_MANAGED_BY_HUMAN"),
    (HUMAN, AI, "ACTIVE", "CONVERSATION_MANAGED_BY_AI"),
    (HUMAN, HUMAN, "ARCHIVED", "CONVERSATION_ARCHIVED"),
])
def test_who_may_send(sender, managed_by, status, expected):
    c = conversation(managed_by=managed_by, status=status)
    if expected is None:
        domain.check_send(c, sender, NOW)
        return
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_send(c, sender, NOW)
    assert reason(caught) == expected


def test_senders():
    assert domain.sender_of(user()) == (HUMAN, USER)
    assert domain.sender_of(agent()) == (AI, None)


def test_unanswered_is_the_clients_turn():
    assert conversation(last_inbound_at=NOW, last_message_at=NOW).unanswered
    assert not conversation(last_inbound_at=NOW - timedelta(seconds=1), last_message_at=NOW).unanswered
    assert not conversation(last_inbound_at=None).unanswered


# --- hand-offs ---------------------------------------------------------------------------------

def test_a_user_taking_over_is_assigned_and_recorded_as_human():
    plan = domain.plan_handoff(conversation(), user(), HUMAN, None, "VIP")
    assert (plan.to_manager, plan.assigned_user_id, plan.handed_off_by, plan.handed_off_by_user_id) == (
        HUMAN, USER, HUMAN, USER)


def test_a_user_may_reassign_and_hand_back_to_the_ai():
    other = uuid.uuid4()
    human = conversation(managed_by=HUMAN, assigned_user_id=USER)
    assert domain.plan_handoff(human, user(), HUMAN, other, None).assigned_user_id == other
    back = domain.plan_handoff(human, user(), AI, None, "booked")
    assert (back.to_manager, back.assigned_user_id) == (AI, None)


def test_the_ai_hands_to_a_human_unassigned_and_never_takes_over():
    plan = domain.plan_handoff(conversation(), agent(), HUMAN, None, "asks for a person")
    assert (plan.assigned_user_id, plan.handed_off_by, plan.handed_off_by_user_id) == (None, AI, None)
    with pytest.raises(PermissionDenied) as caught:
        domain.plan_handoff(conversation(managed_by=HUMAN), agent(), AI, None, None)
    assert reason(caught) == "AI_CANNOT_TAKE_OVER"
    with pytest.raises(InvalidArgument):
        domain.plan_handoff(conversation(), agent(), HUMAN, USER, None)


@pytest.mark.parametrize("current,to,assignee,principal,error", [
    (dict(managed_by=AI), AI, None, user, "HANDOFF_UNCHANGED"),
    (dict(managed_by=HUMAN, assigned_user_id=USER), HUMAN, None, user, "HANDOFF_UNCHANGED"),
    (dict(managed_by=HUMAN, assigned_user_id=None), HUMAN, None, agent, "HANDOFF_UNCHANGED"),
    (dict(status="ARCHIVED"), HUMAN, None, user, "CONVERSATION_ARCHIVED"),
    (dict(), None, None, user, "INVALID_ARGUMENT"),
    (dict(), AI, USER, user, "INVALID_ARGUMENT"),
])
def test_handoffs_that_are_refused(current, to, assignee, principal, error):
    with pytest.raises((FailedPrecondition, InvalidArgument)) as caught:
        domain.plan_handoff(conversation(**current), principal(), to, assignee, None)
    assert reason(caught) == error


# --- the WhatsApp session ----------------------------------------------------------------------

STATES = [DISCONNECTED, CONNECTING, CONNECTED, ERROR]
ALLOWED = {(DISCONNECTED, CONNECTING), (CONNECTING, CONNECTING), (CONNECTING, CONNECTED),
           (CONNECTING, DISCONNECTED), (CONNECTING, ERROR), (CONNECTED, DISCONNECTED), (CONNECTED, ERROR),
           (ERROR, CONNECTING), (ERROR, DISCONNECTED)}


@pytest.mark.parametrize("current,to", list(itertools.product(STATES, STATES)))
def test_every_session_move_is_allowed_or_refused(current, to):
    session = WhatsAppSession(status=current, qr_code="qr" if current == CONNECTING else None,
                              qr_expires_at=NOW + timedelta(seconds=30) if current == CONNECTING else None,
                              error_message="old" if current == ERROR else None)
    details = {"qr_code": "new-qr"} if to == CONNECTING else {"error_message": "offline"} if to == ERROR else {}
    if (current, to) not in ALLOWED:
        with pytest.raises(FailedPrecondition) as caught:
            domain.session_move(session, to, NOW, **details)
        assert reason(caught) == "ILLEGAL_SESSION_TRANSITION"
        assert caught.value.metadata == {"from": current, "to": to}
        return
    moved = domain.session_move(session, to, NOW, **details)
    assert moved.status == to
    if to == CONNECTING:
        assert (moved.qr_code, moved.qr_expires_at) == ("new-qr", NOW + domain.QR_CODE_TTL)
    else:
        assert moved.qr_code is None and moved.qr_expires_at is None  # cleared once connected or ended
    assert moved.last_connected_at == (NOW if to == CONNECTED else None)
    ended = to == DISCONNECTED or (to == ERROR and current == CONNECTED)
    assert moved.last_disconnected_at == (NOW if ended else None)
    assert moved.error_message == ("offline" if to == ERROR else None)


def test_a_session_needs_a_qr_code_to_connect_and_a_message_to_fail():
    with pytest.raises(InvalidArgument):
        domain.session_move(WhatsAppSession(), CONNECTING, NOW)
    with pytest.raises(InvalidArgument):
        domain.session_move(WhatsAppSession(), CONNECTING, NOW, qr_code="qr", qr_expires_at=NOW)
    with pytest.raises(InvalidArgument):
        domain.session_move(WhatsAppSession(status=CONNECTED), ERROR, NOW)


def test_an_expired_qr_code_is_not_shown():
    session = WhatsAppSession(status=CONNECTING, qr_code="qr", qr_expires_at=NOW)
    assert session.visible(NOW - timedelta(microseconds=1)).qr_code == "qr"
    assert session.visible(NOW).qr_code is None


# --- the language of a message -----------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("Здравствуйте, интересует тур на Иссык-Куль для семьи", "ru"),
    ("Саламатсызбы, Ысык-Көлгө тур барбы? Баасы канча?", "ky"),
    ("Сәлеметсіз бе, Ыстықкөлге тур бар ма?", "kk"),
    ("Salom, Issiqko'lga sayohat bormi?", "uz"),
    ("Merhaba, Issık Göl turu var mı?", "tr"),
    ("Hallo, gibt es Touren im März?", "de"),
    ("Hi! Do you have weekend trips in March?", "en"),
    ("Bonjour, le circuit Exploration est-il végétarien ?", "fr"),
    ("مرحبا، هل الطعام حلال في الجولة؟", "ar"),
    ("Hola, ¿cuánto cuesta el tour?", "es"),
    ("Dzień dobry, ile kosztuje wycieczka?", "pl"),
])
def test_detection_names_the_supported_languages(text, expected):
    assert domain.trusted(language.detect(text), text) == expected


@pytest.mark.parametrize("text", ["Рахмат", "Рахмат!", "ok", "Да", "👍", "Спасибо", "Рахмат, жакшы"])
def test_short_or_shared_words_are_not_trusted(text):
    assert domain.trusted(language.detect(text), text) is None


def test_the_conversations_language_wins_over_a_guess():
    guess = Detection("uz", 0.38)
    assert domain.message_language(guess, "Рахмат", "ky", "ru") == "ky"
    assert domain.message_language(guess, "Рахмат", None, "ru") == "ru"
    assert domain.message_language(guess, "Рахмат", None, None) is None
    assert domain.message_language(Detection("de", 0.99), "Hallo, wie geht es?", "ky", "ru") == "de"
    assert not domain.needs_translation("ru", "ru") and domain.needs_translation("ky", "ru")
    assert not domain.needs_translation(None, "ru") and not domain.needs_translation("ky", None)


def test_an_inbound_message_collects_every_violation():
    with pytest.raises(InvalidArgument) as caught:
        domain.inbound("EMAIL", "123", "", "", None, "x" * 201)
    assert {f for f, _ in caught.value.violations} == {"channel", "from_phone", "content", "external_message_id",
                                                         "contact_name"}
    ok = domain.inbound("WHATSAPP", "+996 555 12-34-56", "Hi", " wamid.1 ", None, " Ivan ")
    assert (ok.phone, ok.external_message_id, ok.contact_name) == ("+996555123456", "wamid.1", "Ivan")


# --- the event hub's back-pressure (no database: notices are dispatched directly) ---------------

async def test_the_hub_filters_by_organization_and_a_slow_subscriber_resyncs():
    a, b = uuid.uuid4(), uuid.uuid4()

    async def load(organization_id, notices):
        return [Event(n.kind, n.conversation_id, n) for n in notices]

    async def no_database():
        raise AssertionError("not used: notices are dispatched by hand")

    hub = EventHub(no_database, load, queue_size=3)
    hub._listening.set()  # no database here: notices are dispatched by hand
    slow_a, only_b = await hub.subscribe(a), await hub.subscribe(b)
    conversation = uuid.uuid4()
    watching = await hub.subscribe(a, conversation)
    notices = [Notice(a, "message.created", uuid.uuid4(), conversation if i % 2 else None) for i in range(7)]
    await hub.dispatch([*notices, Notice(b, "message.created", uuid.uuid4(), None)])
    assert only_b.pending() == 1 and (await only_b.get()).resource.organization_id == b
    assert slow_a.pending() <= 3 and slow_a.dropped > 0
    backlog = [await slow_a.get() for _ in range(slow_a.pending())]
    assert backlog[0].resync_reason == "SLOW_CONSUMER" and backlog[-1].resource == notices[-1]
    assert [e.resource for e in [await watching.get() for _ in range(watching.pending())]
            if e.kind != "resync"][-1] == notices[5]
    hub.unsubscribe(watching)
    await hub.stop()
    assert await slow_a.get() is None  # stopped: the stream ends
    assert hub.subscriber_count() == 0


async def test_a_subscription_times_out_and_ends_when_closed():
    subscription = Subscription(ORG, None, 2)
    with pytest.raises(TimeoutError):
        await subscription.get(timeout=0.01)
    waiting = asyncio.ensure_future(subscription.get())
    await asyncio.sleep(0)
    subscription.close()
    assert await waiting is None
