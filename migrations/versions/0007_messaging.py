"""messaging: what the conversations, messages and WhatsApp session services need beyond 0001

conversations
- `channel_address`: the client's address on the channel (the phone that wrote, on
  WhatsApp). Replies go there; crm's client phone may be edited later, the chat's may not.
- `assigned_user_id` (composite FK to users, SET NULL when the user goes): the manager
  responsible while a human manages the conversation. A hand-off to a human names who
  answers, and a manager's inbox is "mine" (filter). Only with managed_by = HUMAN.
- `language`: the client's language as last detected; kept for messages too short to tell
  ("Рахмат" is Kyrgyz, Kazakh and Uzbek alike).
- `last_inbound_at`: the client's latest message. WhatsApp's 24-hour customer-service
  window runs from it, and `unanswered` is `last_inbound_at = last_message_at`.
- `last_message_at` becomes NOT NULL DEFAULT now() (a conversation's activity starts when it
  is created), so the inbox pages on the keyset (last_message_at, id) with no NULLs.
- one open conversation per client and channel: a partial unique index (status = ACTIVE),
  which ingestion relies on under concurrency (INSERT ... ON CONFLICT DO NOTHING).

messages
- `read_at`: WhatsApp reports `read`; kept as a time, the seed's enum is not extended.
- `idempotency_key` (unique per organization): SendMessage's request id, also given to the
  channel provider, so a retried request or a re-send after a crash never sends twice.
- `send_attempts`, `send_claimed_until`: the lease of the process sending a PENDING message.
  A message whose lease ran out (its sender crashed) is claimed by one process and re-sent.

conversation_handoffs (new, append-only): who handed a conversation between the AI and a
human, when, why, and to whom. ListHandoffs reads it; StreamEvents streams it.

whatsapp_sessions: `qr_expires_at` (a QR code is shown only until it expires).

Indexes (all led by organization_id): the inbox keyset (organization_id, last_message_at,
id) and the messages keyset (organization_id, conversation_id, created_at, id) replace the
seed's shorter ones, which they serve too; the open-conversation unique index; hand-offs by
conversation; partial indexes for the user foreign keys; a partial index of PENDING outbound
messages for the re-send scan.

Events: AFTER triggers call pg_notify('messaging_events', payload) for new messages, message
updates (status, read time, error, translation), hand-offs, conversation status changes and
session changes. Triggers, not calls in the repository, so that no write path can forget
one; NOTIFY is transactional (sent at commit, dropped on rollback) and delivered in commit
order. The payload is small JSON (well under NOTIFY's 8000 bytes): organization `o`, kind
`k`, row id `i`, conversation `c`. NOTIFY bypasses row-level security, so the service filters
by organization before anything reaches a stream and loads each row under RLS as that
organization (a forged payload loads nothing).

Re-sending after a crash must find PENDING messages of every organization. The services'
role sees no rows without an organization, so one narrow SECURITY DEFINER function
(`messaging.stale_pending_messages(limit)`, pinned search_path, EXECUTE for the services'
role only) returns just (organization_id, id) of outbound PENDING messages whose lease has
run out, through an owner policy limited to exactly those rows. Everything after it runs
under RLS as that organization.

Grants: conversation_handoffs to messaging's role (soulkg_messaging, 0005), like its other
tables; the `messaging` schema's USAGE and the scan function's EXECUTE to the services' group
role (soulkg_app), like the other schemas and functions.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from libs.db.provision import APP_ROLE, OWNER_ROLE

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MESSAGING_ROLE = "soulkg_messaging"  # as of this revision (libs/registry.py may change later)

NOTIFY_TRIGGERS = [
    ("trg_messages_notify_created", "AFTER INSERT ON messages", "message.created"),
    ("trg_messages_notify_updated", "AFTER UPDATE ON messages FOR EACH ROW WHEN ("
     "OLD.status IS DISTINCT FROM NEW.status OR OLD.read_at IS DISTINCT FROM NEW.read_at"
     " OR OLD.error IS DISTINCT FROM NEW.error"
     " OR OLD.translated_content IS DISTINCT FROM NEW.translated_content)", "message.updated"),
    ("trg_conversation_handoffs_notify", "AFTER INSERT ON conversation_handoffs", "handoff"),
    ("trg_conversations_notify_status", "AFTER UPDATE ON conversations FOR EACH ROW WHEN ("
     "OLD.status IS DISTINCT FROM NEW.status)", "conversation.updated"),
    ("trg_whatsapp_sessions_notify", "AFTER INSERT OR UPDATE ON whatsapp_sessions", "session.updated"),
]


def upgrade() -> None:
    op.execute("""
ALTER TABLE conversations
    ADD COLUMN channel_address text,
    ADD COLUMN assigned_user_id uuid,
    ADD COLUMN language text,
    ADD COLUMN last_inbound_at timestamptz,
    ADD CONSTRAINT fk_conversations_assigned_user_id FOREIGN KEY (organization_id, assigned_user_id)
        REFERENCES users (organization_id, id) ON DELETE SET NULL (assigned_user_id),
    ADD CONSTRAINT ck_conversations_assigned_user_id CHECK (assigned_user_id IS NULL OR managed_by = 'HUMAN')""")
    # The owner sees no rows under FORCE ROW LEVEL SECURITY; lift it for this one backfill,
    # inside the migration's transaction.
    op.execute("ALTER TABLE conversations NO FORCE ROW LEVEL SECURITY")
    op.execute("UPDATE conversations SET last_message_at = created_at WHERE last_message_at IS NULL")
    op.execute("ALTER TABLE conversations FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE conversations ALTER COLUMN last_message_at SET DEFAULT now(),"
               " ALTER COLUMN last_message_at SET NOT NULL")
    op.execute("""CREATE UNIQUE INDEX uq_conversations_organization_id_client_id_channel_active
                  ON conversations (organization_id, client_id, channel) WHERE status = 'ACTIVE'""")
    op.execute("""CREATE INDEX ix_conversations_organization_id_last_message_at_id
                  ON conversations (organization_id, last_message_at, id)""")
    op.execute("DROP INDEX ix_conversations_organization_id_last_message_at")
    op.execute("""CREATE INDEX ix_conversations_organization_id_assigned_user_id
                  ON conversations (organization_id, assigned_user_id) WHERE assigned_user_id IS NOT NULL""")

    op.execute("""
ALTER TABLE messages
    ADD COLUMN read_at timestamptz,
    ADD COLUMN idempotency_key uuid,
    ADD COLUMN send_attempts smallint NOT NULL DEFAULT 0,
    ADD COLUMN send_claimed_until timestamptz,
    ADD CONSTRAINT uq_messages_organization_id_idempotency_key UNIQUE (organization_id, idempotency_key),
    ADD CONSTRAINT ck_messages_idempotency_key CHECK (idempotency_key IS NULL OR direction = 'OUTGOING')""")
    op.execute("""CREATE INDEX ix_messages_organization_id_conversation_id_created_at_id
                  ON messages (organization_id, conversation_id, created_at, id)""")
    op.execute("DROP INDEX ix_messages_organization_id_conversation_id_created_at")
    op.execute("""CREATE INDEX ix_messages_organization_id_send_claimed_until_pending
                  ON messages (organization_id, send_claimed_until)
                  WHERE status = 'PENDING' AND direction = 'OUTGOING'""")

    op.execute("""
CREATE TABLE conversation_handoffs (
    id                    uuid                 NOT NULL DEFAULT gen_random_uuid(),
    organization_id       uuid                 NOT NULL,
    conversation_id       uuid                 NOT NULL,
    from_manager          conversation_manager NOT NULL,
    to_manager            conversation_manager NOT NULL,
    assigned_user_id      uuid,                -- the manager it went to, if one was named
    handed_off_by         conversation_manager NOT NULL,  -- a user (HUMAN) or the AI agent
    handed_off_by_user_id uuid,                -- the user, when a user handed it off
    reason                text,
    created_at            timestamptz          NOT NULL DEFAULT now(),
    CONSTRAINT pk_conversation_handoffs PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_conversation_handoffs_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_conversation_handoffs_conversation_id FOREIGN KEY (organization_id, conversation_id)
        REFERENCES conversations (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_conversation_handoffs_assigned_user_id FOREIGN KEY (organization_id, assigned_user_id)
        REFERENCES users (organization_id, id) ON DELETE SET NULL (assigned_user_id),
    CONSTRAINT fk_conversation_handoffs_handed_off_by_user_id
        FOREIGN KEY (organization_id, handed_off_by_user_id)
        REFERENCES users (organization_id, id) ON DELETE SET NULL (handed_off_by_user_id),
    CONSTRAINT ck_conversation_handoffs_user CHECK (handed_off_by_user_id IS NULL OR handed_off_by = 'HUMAN'),
    CONSTRAINT ck_conversation_handoffs_assigned CHECK (assigned_user_id IS NULL OR to_manager = 'HUMAN')
)""")
    op.execute("""CREATE INDEX ix_conversation_handoffs_organization_id_conversation_id_created_at_id
                  ON conversation_handoffs (organization_id, conversation_id, created_at, id)""")
    op.execute("""CREATE INDEX ix_conversation_handoffs_organization_id_assigned_user_id
                  ON conversation_handoffs (organization_id, assigned_user_id) WHERE assigned_user_id IS NOT NULL""")
    op.execute("""CREATE INDEX ix_conversation_handoffs_organization_id_handed_off_by_user_id
                  ON conversation_handoffs (organization_id, handed_off_by_user_id)
                  WHERE handed_off_by_user_id IS NOT NULL""")
    op.execute("ALTER TABLE conversation_handoffs ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE conversation_handoffs FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY conversation_handoffs_tenant_isolation ON conversation_handoffs FOR ALL TO {APP_ROLE}"
               " USING (organization_id = (select app.current_org()))"
               " WITH CHECK (organization_id = (select app.current_org()))")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON conversation_handoffs TO {MESSAGING_ROLE}")

    op.execute("ALTER TABLE whatsapp_sessions ADD COLUMN qr_expires_at timestamptz")

    op.execute("CREATE SCHEMA messaging")
    op.execute(f"GRANT USAGE ON SCHEMA messaging TO {APP_ROLE}")
    # Per-relation compiled (plpgsql compiles a trigger function per table), so each branch
    # only ever reads columns its table has.
    op.execute("""
CREATE FUNCTION messaging.notify_event() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_conversation uuid;
BEGIN
    IF TG_TABLE_NAME = 'conversations' THEN
        v_conversation := NEW.id;
    ELSIF TG_TABLE_NAME IN ('messages', 'conversation_handoffs') THEN
        v_conversation := NEW.conversation_id;
    END IF;
    PERFORM pg_notify('messaging_events', json_build_object(
        'o', NEW.organization_id, 'k', TG_ARGV[0], 'i', NEW.id, 'c', v_conversation)::text);
    RETURN NULL;
END
$$""")
    op.execute("REVOKE EXECUTE ON FUNCTION messaging.notify_event() FROM PUBLIC")  # triggers need none
    for name, event, kind in NOTIFY_TRIGGERS:
        each_row = "" if "FOR EACH ROW" in event else " FOR EACH ROW"
        op.execute(f"CREATE TRIGGER {name} {event}{each_row} EXECUTE FUNCTION messaging.notify_event('{kind}')")

    op.execute(f"""
CREATE POLICY messages_owner_pending_scan ON messages
    FOR SELECT TO {OWNER_ROLE} USING (status = 'PENDING' AND direction = 'OUTGOING')""")
    op.execute("""
CREATE FUNCTION messaging.stale_pending_messages(p_limit integer)
    RETURNS TABLE (organization_id uuid, message_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.organization_id, m.id FROM public.messages m
    WHERE m.status = 'PENDING' AND m.direction = 'OUTGOING'
      AND (m.send_claimed_until IS NULL OR m.send_claimed_until < now())
    ORDER BY m.send_claimed_until NULLS FIRST
    LIMIT least(greatest(p_limit, 0), 1000)
$$""")
    op.execute("REVOKE ALL ON FUNCTION messaging.stale_pending_messages(integer) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION messaging.stale_pending_messages(integer) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP POLICY messages_owner_pending_scan ON messages")
    for name, event, _ in NOTIFY_TRIGGERS:
        table = event.split(" ON ")[1].split()[0]
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP SCHEMA messaging CASCADE")
    op.execute("ALTER TABLE whatsapp_sessions DROP COLUMN qr_expires_at")
    op.execute("DROP TABLE conversation_handoffs")
    op.execute("""CREATE INDEX ix_messages_organization_id_conversation_id_created_at
                  ON messages (organization_id, conversation_id, created_at)""")
    op.execute("DROP INDEX ix_messages_organization_id_send_claimed_until_pending")
    op.execute("DROP INDEX ix_messages_organization_id_conversation_id_created_at_id")
    op.execute("""
ALTER TABLE messages
    DROP CONSTRAINT ck_messages_idempotency_key,
    DROP CONSTRAINT uq_messages_organization_id_idempotency_key,
    DROP COLUMN send_claimed_until,
    DROP COLUMN send_attempts,
    DROP COLUMN idempotency_key,
    DROP COLUMN read_at""")
    op.execute("""CREATE INDEX ix_conversations_organization_id_last_message_at
                  ON conversations (organization_id, last_message_at)""")
    op.execute("DROP INDEX ix_conversations_organization_id_assigned_user_id")
    op.execute("DROP INDEX ix_conversations_organization_id_last_message_at_id")
    op.execute("DROP INDEX uq_conversations_organization_id_client_id_channel_active")
    op.execute("ALTER TABLE conversations ALTER COLUMN last_message_at DROP NOT NULL,"
               " ALTER COLUMN last_message_at DROP DEFAULT")
    op.execute("""
ALTER TABLE conversations
    DROP CONSTRAINT ck_conversations_assigned_user_id,
    DROP CONSTRAINT fk_conversations_assigned_user_id,
    DROP COLUMN last_inbound_at,
    DROP COLUMN language,
    DROP COLUMN assigned_user_id,
    DROP COLUMN channel_address""")
