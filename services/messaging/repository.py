"""messaging's data access: plain SQL over asyncpg inside TenantDatabase transactions
(RLS-scoped; every statement also states the organization). Returns entities."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from libs.errors import Aborted, FailedPrecondition, InvalidArgument
from libs.persistence import IN_ORG, keyset_after
from services.messaging.domain import Conversation, Handoff, Message, WhatsAppSession

CONVERSATION_COLUMNS = ("id, client_id, channel::text AS channel, channel_address, status::text AS status, "
                        "managed_by::text AS managed_by, assigned_user_id, language, last_message_at, "
                        "last_inbound_at, created_at, updated_at")
MESSAGE_COLUMNS = ("id, conversation_id, direction::text AS direction, sender::text AS sender, sender_id, "
                   "content, language, translated_content, whatsapp_message_id, status::text AS status, "
                   "error, read_at, created_at, idempotency_key, send_attempts")
HANDOFF_COLUMNS = ("id, conversation_id, from_manager::text AS from_manager, to_manager::text AS to_manager, "
                   "assigned_user_id, handed_off_by::text AS handed_off_by, handed_off_by_user_id, reason, "
                   "created_at")
SESSION_COLUMNS = ("status::text AS status, qr_code, qr_expires_at, last_connected_at, last_disconnected_at, "
                   "error_message, updated_at")


def _conversation(row: asyncpg.Record | None) -> Conversation | None:
    if row is None:
        return None
    return Conversation(row["id"], row["client_id"], row["channel"], row["channel_address"], row["status"],
                        row["managed_by"], row["assigned_user_id"], row["language"], row["last_message_at"],
                        row["last_inbound_at"], row["created_at"], row["updated_at"])


def _message(row: asyncpg.Record | None) -> Message | None:
    if row is None:
        return None
    return Message(row["id"], row["conversation_id"], row["direction"], row["sender"], row["sender_id"],
                   row["content"], row["language"], row["translated_content"], row["whatsapp_message_id"],
                   row["status"], row["error"], row["read_at"], row["created_at"], row["idempotency_key"],
                   row["send_attempts"])


def _handoff(row: asyncpg.Record | None) -> Handoff | None:
    if row is None:
        return None
    return Handoff(row["id"], row["conversation_id"], row["from_manager"], row["to_manager"],
                   row["assigned_user_id"], row["handed_off_by"], row["handed_off_by_user_id"], row["reason"],
                   row["created_at"])


def _session(row: asyncpg.Record | None) -> WhatsAppSession | None:
    if row is None:
        return None
    return WhatsAppSession(row["status"], row["qr_code"], row["qr_expires_at"], row["last_connected_at"],
                           row["last_disconnected_at"], row["error_message"], row["updated_at"])


async def now(conn: asyncpg.Connection) -> datetime:
    return await conn.fetchval("SELECT now()")


# --- conversations -----------------------------------------------------------------------------

async def get_conversation(conn: asyncpg.Connection, conversation_id: UUID, *,
                           for_update: bool = False) -> Conversation | None:
    lock = " FOR UPDATE" if for_update else ""
    return _conversation(await conn.fetchrow(
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE {IN_ORG} AND id = $1{lock}", conversation_id))


async def get_conversation_at(conn: asyncpg.Connection, conversation_id: UUID) -> tuple[Conversation | None, datetime]:
    """The conversation, locked, and the database's time (the one clock every window uses)."""
    row = await conn.fetchrow(
        f"SELECT {CONVERSATION_COLUMNS}, now() AS db_now FROM conversations WHERE {IN_ORG} AND id = $1 FOR UPDATE",
        conversation_id)
    return (_conversation(row), row["db_now"]) if row else (None, await now(conn))


async def open_conversation(conn: asyncpg.Connection, client_id: UUID, channel: str,
                            address: str) -> tuple[Conversation, bool]:
    """The client's open conversation on the channel, locked, or a new one: (it, created).
    Race-safe: the partial unique index admits one open conversation per client and channel,
    so racing callers wait for the first insert and then share its row."""
    for _ in range(3):
        row = await conn.fetchrow(
            f"""SELECT {CONVERSATION_COLUMNS} FROM conversations
                WHERE {IN_ORG} AND client_id = $1 AND channel = $2::communication_channel AND status = 'ACTIVE'
                FOR UPDATE""", client_id, channel)
        if row is not None:
            return _conversation(row), False
        row = await conn.fetchrow(
            f"""INSERT INTO conversations (organization_id, client_id, channel, channel_address)
                VALUES ((SELECT app.current_org()), $1, $2::communication_channel, $3)
                ON CONFLICT (organization_id, client_id, channel) WHERE status = 'ACTIVE' DO NOTHING
                RETURNING {CONVERSATION_COLUMNS}""", client_id, channel, address)
        if row is not None:
            return _conversation(row), True
    raise Aborted("the client's conversation changed concurrently; retry", reason="CONCURRENCY_CONFLICT")


async def record_inbound(conn: asyncpg.Connection, conversation_id: UUID, at: datetime,
                         language: str | None) -> Conversation:
    return _conversation(await conn.fetchrow(
        f"""UPDATE conversations SET last_message_at = greatest(last_message_at, $2),
                   last_inbound_at = greatest(last_inbound_at, $2), language = coalesce($3, language)
            WHERE {IN_ORG} AND id = $1 RETURNING {CONVERSATION_COLUMNS}""", conversation_id, at, language))


async def record_outbound(conn: asyncpg.Connection, conversation_id: UUID, at: datetime) -> None:
    await conn.execute(
        f"UPDATE conversations SET last_message_at = greatest(last_message_at, $2) WHERE {IN_ORG} AND id = $1",
        conversation_id, at)


async def set_conversation_status(conn: asyncpg.Connection, conversation_id: UUID, status: str) -> Conversation:
    try:
        return _conversation(await conn.fetchrow(
            f"""UPDATE conversations SET status = $2::conversation_status WHERE {IN_ORG} AND id = $1
                RETURNING {CONVERSATION_COLUMNS}""", conversation_id, status))
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "uq_conversations_organization_id_client_id_channel_active":
            raise FailedPrecondition("the client has another open conversation on this channel",
                                     reason="OPEN_CONVERSATION_EXISTS") from None
        raise


async def hand_off(conn: asyncpg.Connection, conversation: Conversation, to_manager: str,
                   assigned_user_id: UUID | None, handed_off_by: str, handed_off_by_user_id: UUID | None,
                   reason: str | None) -> tuple[Conversation, Handoff]:
    try:
        updated = await conn.fetchrow(
            f"""UPDATE conversations SET managed_by = $2::conversation_manager, assigned_user_id = $3
                WHERE {IN_ORG} AND id = $1 RETURNING {CONVERSATION_COLUMNS}""",
            conversation.id, to_manager, assigned_user_id)
        handoff = await conn.fetchrow(
            f"""INSERT INTO conversation_handoffs (organization_id, conversation_id, from_manager, to_manager,
                    assigned_user_id, handed_off_by, handed_off_by_user_id, reason, created_at)
                VALUES ((SELECT app.current_org()), $1, $2::conversation_manager, $3::conversation_manager, $4,
                        $5::conversation_manager, $6, $7, clock_timestamp())
                RETURNING {HANDOFF_COLUMNS}""",
            conversation.id, conversation.managed_by, to_manager, assigned_user_id, handed_off_by,
            handed_off_by_user_id, reason)
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name in ("fk_conversations_assigned_user_id", "fk_conversation_handoffs_assigned_user_id"):
            raise InvalidArgument.field("assigned_user_id", "no such user in this organization") from None
        raise
    return _conversation(updated), _handoff(handoff)


async def list_conversations(conn: asyncpg.Connection, *, where: str, params: list, after: tuple | None,
                             limit: int) -> list[Conversation]:
    """Latest activity first, keyset (last_message_at, id). `where` uses parameters from $1."""
    conditions = [IN_ORG, *([where] if where else [])]
    args = list(params)
    if after is not None:
        conditions.append(keyset_after(("last_message_at", "id"), True, len(args) + 1))
        args += list(after)
    args.append(limit)
    rows = await conn.fetch(
        f"""SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE {' AND '.join(conditions)}
            ORDER BY last_message_at DESC, id DESC LIMIT ${len(args)}""", *args)
    return [_conversation(row) for row in rows]


async def list_handoffs(conn: asyncpg.Connection, conversation_id: UUID, after: tuple | None,
                        limit: int) -> list[Handoff]:
    keyset = f" AND {keyset_after(('created_at', 'id'), True, 2)}" if after else ""
    args = [conversation_id, *(after or ()), limit]
    rows = await conn.fetch(
        f"""SELECT {HANDOFF_COLUMNS} FROM conversation_handoffs WHERE {IN_ORG} AND conversation_id = $1{keyset}
            ORDER BY created_at DESC, id DESC LIMIT ${len(args)}""", *args)
    return [_handoff(row) for row in rows]


# --- messages ----------------------------------------------------------------------------------

async def get_message(conn: asyncpg.Connection, message_id: UUID) -> Message | None:
    return _message(await conn.fetchrow(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {IN_ORG} AND id = $1",
                                        message_id))


async def message_by_external_id(conn: asyncpg.Connection, external_id: str, *,
                                 for_update: bool = False) -> Message | None:
    lock = " FOR UPDATE" if for_update else ""
    return _message(await conn.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {IN_ORG} AND whatsapp_message_id = $1{lock}", external_id))


async def message_by_idempotency_key(conn: asyncpg.Connection, key: UUID) -> Message | None:
    return _message(await conn.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {IN_ORG} AND idempotency_key = $1", key))


async def insert_inbound(conn: asyncpg.Connection, conversation_id: UUID, content: str, language: str | None,
                         external_id: str, sent_at: datetime | None) -> Message | None:
    """The new message (at the channel's time, never in the future), or None when this
    external id is stored already (waits for a racing insert of it to finish)."""
    return _message(await conn.fetchrow(
        f"""INSERT INTO messages (organization_id, conversation_id, direction, sender, content, language,
                whatsapp_message_id, status, created_at)
            VALUES ((SELECT app.current_org()), $1, 'INCOMING', 'CLIENT', $2, $3, $4, 'DELIVERED',
                    least(coalesce($5, now()), now()))
            ON CONFLICT (organization_id, whatsapp_message_id) DO NOTHING
            RETURNING {MESSAGE_COLUMNS}""", conversation_id, content, language, external_id, sent_at))


async def insert_outbound(conn: asyncpg.Connection, conversation_id: UUID, sender: str, sender_id: UUID | None,
                          content: str, idempotency_key: UUID, lease: timedelta) -> Message | None:
    """A PENDING message, leased to this sender; None when the key is used already."""
    return _message(await conn.fetchrow(
        f"""INSERT INTO messages (organization_id, conversation_id, direction, sender, sender_id, content, status,
                idempotency_key, send_attempts, send_claimed_until)
            VALUES ((SELECT app.current_org()), $1, 'OUTGOING', $2::message_sender, $3, $4, 'PENDING', $5, 1,
                    now() + $6::interval)
            ON CONFLICT (organization_id, idempotency_key) DO NOTHING
            RETURNING {MESSAGE_COLUMNS}""", conversation_id, sender, sender_id, content, idempotency_key, lease))


async def set_translation(conn: asyncpg.Connection, message_id: UUID, translated: str) -> Message | None:
    return _message(await conn.fetchrow(
        f"""UPDATE messages SET translated_content = $2 WHERE {IN_ORG} AND id = $1
            RETURNING {MESSAGE_COLUMNS}""", message_id, translated))


async def claim_pending(conn: asyncpg.Connection, message_id: UUID, lease: timedelta) -> Message | None:
    """Take over a PENDING message whose sender's lease ran out (one claimant wins)."""
    return _message(await conn.fetchrow(
        f"""UPDATE messages SET send_attempts = send_attempts + 1, send_claimed_until = now() + $2::interval
            WHERE {IN_ORG} AND id = $1 AND status = 'PENDING' AND direction = 'OUTGOING'
              AND (send_claimed_until IS NULL OR send_claimed_until < now())
            RETURNING {MESSAGE_COLUMNS}""", message_id, lease))


async def mark_sent(conn: asyncpg.Connection, message_id: UUID, external_id: str) -> Message | None:
    """PENDING -> SENT with the channel's id (None when it is no longer PENDING)."""
    return _message(await conn.fetchrow(
        f"""UPDATE messages SET status = 'SENT', whatsapp_message_id = $2, send_claimed_until = NULL
            WHERE {IN_ORG} AND id = $1 AND status = 'PENDING' RETURNING {MESSAGE_COLUMNS}""",
        message_id, external_id))


async def mark_failed(conn: asyncpg.Connection, message_id: UUID, error: str) -> Message | None:
    return _message(await conn.fetchrow(
        f"""UPDATE messages SET status = 'FAILED', error = $2, send_claimed_until = NULL
            WHERE {IN_ORG} AND id = $1 AND status = 'PENDING' RETURNING {MESSAGE_COLUMNS}""", message_id, error))


async def set_delivery(conn: asyncpg.Connection, message_id: UUID, status: str, read_at: datetime | None,
                       error: str | None) -> Message:
    return _message(await conn.fetchrow(
        f"""UPDATE messages SET status = $2::message_status, read_at = $3, error = $4
            WHERE {IN_ORG} AND id = $1 RETURNING {MESSAGE_COLUMNS}""", message_id, status, read_at, error))


async def list_messages(conn: asyncpg.Connection, conversation_id: UUID, after: tuple | None,
                        limit: int) -> list[Message]:
    """Newest first, keyset (created_at, id)."""
    keyset = f" AND {keyset_after(('created_at', 'id'), True, 2)}" if after else ""
    args = [conversation_id, *(after or ()), limit]
    rows = await conn.fetch(
        f"""SELECT {MESSAGE_COLUMNS} FROM messages WHERE {IN_ORG} AND conversation_id = $1{keyset}
            ORDER BY created_at DESC, id DESC LIMIT ${len(args)}""", *args)
    return [_message(row) for row in rows]


async def stale_pending(conn: asyncpg.Connection, limit: int) -> list[tuple[UUID, UUID]]:
    """(organization, message) of outbound PENDING messages whose sender's lease ran out, in
    every organization (a narrow SECURITY DEFINER function, migration 0007)."""
    rows = await conn.fetch("SELECT organization_id, message_id FROM messaging.stale_pending_messages($1)", limit)
    return [(row["organization_id"], row["message_id"]) for row in rows]


# --- events ------------------------------------------------------------------------------------

async def messages_by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, Message]:
    rows = await conn.fetch(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {IN_ORG} AND id = ANY($1::uuid[])",
                            list(ids))
    return {row["id"]: _message(row) for row in rows}


async def conversations_by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, Conversation]:
    rows = await conn.fetch(
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE {IN_ORG} AND id = ANY($1::uuid[])", list(ids))
    return {row["id"]: _conversation(row) for row in rows}


async def handoffs_by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, Handoff]:
    rows = await conn.fetch(
        f"SELECT {HANDOFF_COLUMNS} FROM conversation_handoffs WHERE {IN_ORG} AND id = ANY($1::uuid[])", list(ids))
    return {row["id"]: _handoff(row) for row in rows}


# --- the WhatsApp session ----------------------------------------------------------------------

async def get_session(conn: asyncpg.Connection, *, for_update: bool = False) -> tuple[WhatsAppSession | None,
                                                                                        datetime]:
    """The organization's session row (None before the first connection) and the database's time."""
    if for_update:
        await conn.execute(
            """INSERT INTO whatsapp_sessions (organization_id) VALUES ((SELECT app.current_org()))
                ON CONFLICT (organization_id) DO NOTHING""")
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {SESSION_COLUMNS}, now() AS db_now FROM whatsapp_sessions WHERE {IN_ORG}{lock}")
    return (_session(row), row["db_now"]) if row else (None, await now(conn))


async def save_session(conn: asyncpg.Connection, session: WhatsAppSession) -> WhatsAppSession:
    return _session(await conn.fetchrow(
        f"""UPDATE whatsapp_sessions SET status = $1::whatsapp_session_status, qr_code = $2, qr_expires_at = $3,
                   last_connected_at = $4, last_disconnected_at = $5, error_message = $6
            WHERE {IN_ORG} RETURNING {SESSION_COLUMNS}""",
        session.status, session.qr_code, session.qr_expires_at, session.last_connected_at,
        session.last_disconnected_at, session.error_message))
