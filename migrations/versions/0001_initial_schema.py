"""Initial schema: every table, enum and index of the seed, tenant-keyed, under row-level security.

Revision ID: 0001
Revises:
Create Date: 2025-12-20

Source: seed/database-schema.ru.md, with the deviations of DESIGN.md section 4:
snake_case columns, `organization_id` on every tenant table (also client_products and
client_tours), `PRIMARY KEY (organization_id, id)`, composite foreign keys between tenant
tables, every index leading with `organization_id`, numeric money, an explicit
experiment <-> prompt variant table with weights, refresh tokens for identity.

Seed indexes and unique constraints, and what each became here
(`covered` = a listed index or key whose leading columns are exactly these):

  organizations  slug @unique                      -> uq_organizations_slug (slug)
  users          @@unique[organizationId, email]   -> uq_users_organization_id_email
                 @@index[organizationId]           -> covered by PK (organization_id, id)
                 @@index[email]                    -> covered by uq_users_organization_id_email
                                                      (login is by organization slug + email)
  clients        @@unique[organizationId, phone]   -> uq_clients_organization_id_phone
                 @@index[organizationId]           -> covered by PK
                 @@index[organizationId, status]   -> ix_clients_organization_id_status
                 @@index[organizationId, phone]    -> covered by uq_clients_organization_id_phone
                 @@index[organizationId, createdAt]-> ix_clients_organization_id_created_at
  conversations  @@index[organizationId, clientId] -> ix_conversations_organization_id_client_id
                 @@index[organizationId, status]   -> ix_conversations_organization_id_status
                 @@index[organizationId, lastMessageAt]
                                                   -> ix_conversations_organization_id_last_message_at
  messages       @@index[organizationId, conversationId]
                                                   -> covered by ix_messages_organization_id_conversation_id_created_at
                 @@index[organizationId, createdAt]-> ix_messages_organization_id_created_at
                 @@index[conversationId, createdAt]-> ix_messages_organization_id_conversation_id_created_at
                 @@index[whatsappMessageId]        -> uq_messages_organization_id_whatsapp_message_id
                                                      (unique: idempotent ingestion; NULLs repeat freely)
  client_status_history
                 @@index[organizationId, clientId] -> ix_client_status_history_organization_id_client_id_created_at
                                                      (created_at appended: history of a client in order)
                 @@index[organizationId, createdAt]-> ix_client_status_history_organization_id_created_at
  products       @@index[organizationId]           -> covered by PK
                 @@index[organizationId, isActive] -> ix_products_organization_id_is_active
  partners       @@index[organizationId]           -> covered by PK
                 @@index[organizationId, isAvailable]
                                                   -> ix_partners_organization_id_is_available
  client_products
                 @@unique[clientId, productId]     -> uq_client_products_organization_id_client_id_product_id
                 @@index[clientId]                 -> covered by that unique constraint
                 @@index[productId]                -> ix_client_products_organization_id_product_id
  tours          @@index[organizationId, productId]-> ix_tours_organization_id_product_id
                 @@index[organizationId, startDate]-> covered by ix_tours_organization_id_start_date_end_date
                 @@index[organizationId, status]   -> ix_tours_organization_id_status
                 @@index[startDate, endDate]       -> ix_tours_organization_id_start_date_end_date
  client_tours   @@unique[clientId, tourId]        -> uq_client_tours_organization_id_client_id_tour_id
                 @@index[clientId]                 -> covered by that unique constraint
                 @@index[tourId]                   -> ix_client_tours_organization_id_tour_id
  agent_configurations
                 @@unique[organizationId, agentType, name]
                                                   -> uq_agent_configurations_organization_id_agent_type_name
                 @@index[organizationId, agentType]-> covered by that unique constraint
                 @@index[organizationId, isActive] -> ix_agent_configurations_organization_id_is_active
  prompt_variants
                 @@index[organizationId, agentType]-> ix_prompt_variants_organization_id_agent_type
                 @@index[organizationId, isActive] -> ix_prompt_variants_organization_id_is_active
  experiments    @@index[organizationId, status]   -> ix_experiments_organization_id_status
                 @@index[organizationId, agentType]-> ix_experiments_organization_id_agent_type
  dialogue_analysis
                 @@index[organizationId, createdAt]-> ix_dialogue_analysis_organization_id_created_at
                 @@index[organizationId, analysisType]
                                                   -> ix_dialogue_analysis_organization_id_analysis_type
  whatsapp_sessions
                 organizationId @unique            -> uq_whatsapp_sessions_organization_id

Not in the seed, added here:
  experiment_variants  uq_experiment_variants_organization_id_experiment_id_variant_id
                       (organization_id, experiment_id, prompt_variant_id),
                       ix_experiment_variants_organization_id_prompt_variant_id
  refresh_tokens       uq_refresh_tokens_token_hash (token_hash) -- global on purpose: a
                       refresh token is looked up by its hash alone, before the organization
                       is known; the only index not led by organization_id.
                       ix_refresh_tokens_organization_id_user_id,
                       ix_refresh_tokens_organization_id_family_id
  foreign-key support  ix_clients_organization_id_assigned_partner_id,
                       ix_clients_organization_id_prompt_variant_id,
                       ix_products_organization_id_partner_id,
                       ix_messages_organization_id_sender_id (partial: sender_id IS NOT NULL),
                       ix_client_status_history_organization_id_changed_by_user_id (partial),
                       ix_dialogue_analysis_organization_id_prompt_variant_id (partial)

Row-level security: every table has ENABLE + FORCE ROW LEVEL SECURITY and one policy for the
app role, `organization_id = (select app.current_org())` (organizations: `id = ...`). The
owner role has no policy, so under FORCE it sees no rows: it only runs DDL. Referential
actions (ON DELETE CASCADE / SET NULL) are not subject to RLS, and FK checks bypass it too,
which is why every reference between tenant tables carries organization_id.
"""

from alembic import op

from libs.db.provision import APP_ROLE

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# Enum types: exactly the seed's labels in the seed's order (tests/test_enums.py checks it).
ENUMS: dict[str, tuple[str, ...]] = {
    "user_role": ("SUPER_ADMIN", "ADMIN", "MANAGER"),
    "client_status": ("NEW_LEAD", "QUALIFIED", "WARMED", "PROPOSAL_SENT", "NEGOTIATION", "SOLD",
                      "SERVICE", "CLOSED"),
    "communication_channel": ("WHATSAPP", "TELEGRAM", "EMAIL"),
    "conversation_status": ("ACTIVE", "ARCHIVED"),
    "conversation_manager": ("AI", "HUMAN"),
    "message_direction": ("INCOMING", "OUTGOING"),
    "message_sender": ("CLIENT", "AI", "HUMAN"),
    "message_status": ("PENDING", "SENT", "DELIVERED", "FAILED"),
    "status_changed_by": ("AI", "HUMAN", "SYSTEM"),
    "product_type": ("TOUR", "SERVICE", "PACKAGE"),
    "client_product_status": ("INTERESTED", "PROPOSED", "SELECTED", "BOOKED"),
    "tour_status": ("AVAILABLE", "FULL", "CANCELLED", "COMPLETED"),
    "client_tour_status": ("INTERESTED", "PROPOSED", "SELECTED", "BOOKED", "CONFIRMED", "CANCELLED"),
    "agent_type": ("COMMUNICATION", "QUALIFICATION", "PRODUCT_SELECTION", "WARMING", "SALES",
                   "SERVICE", "FEEDBACK"),
    "experiment_status": ("ACTIVE", "PAUSED", "COMPLETED", "CANCELLED"),
    "analysis_type": ("SUCCESS_PATTERNS", "PROBLEM_AREAS", "CONVERSION_METRICS", "RECOMMENDATIONS"),
    "whatsapp_session_status": ("CONNECTING", "CONNECTED", "DISCONNECTED", "ERROR"),
}

# Tables in creation order (parents first). organizations is the tenant table itself.
TABLES: dict[str, str] = {}

TABLES["organizations"] = """
CREATE TABLE organizations (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL,
    slug        text        NOT NULL,
    logo        text,                   -- URL of the logo
    settings    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_organizations PRIMARY KEY (id),
    CONSTRAINT uq_organizations_slug UNIQUE (slug),
    CONSTRAINT ck_organizations_slug
        CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 63)
)"""

TABLES["users"] = """
CREATE TABLE users (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    email           text        NOT NULL,
    password_hash   text        NOT NULL,
    first_name      text,
    last_name       text,
    role            user_role   NOT NULL DEFAULT 'MANAGER',
    is_active       boolean     NOT NULL DEFAULT true,
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_users PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_users_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT uq_users_organization_id_email UNIQUE (organization_id, email)
)"""

TABLES["refresh_tokens"] = """
CREATE TABLE refresh_tokens (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    family_id       uuid        NOT NULL,   -- all tokens of one login, rotated one after another
    token_hash      bytea       NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_refresh_tokens PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_refresh_tokens_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_refresh_tokens_user_id FOREIGN KEY (organization_id, user_id)
        REFERENCES users (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_refresh_tokens_token_hash UNIQUE (token_hash)
)"""

TABLES["partners"] = """
CREATE TABLE partners (
    id               uuid         NOT NULL DEFAULT gen_random_uuid(),
    organization_id  uuid         NOT NULL,
    name             text         NOT NULL,
    contact_phone    text,
    contact_email    text,
    contact_whatsapp text,
    contact_telegram text,
    conditions       text,                  -- terms of the partnership
    rating           numeric(3,2),
    is_available     boolean      NOT NULL DEFAULT true,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT pk_partners PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_partners_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT ck_partners_rating CHECK (rating BETWEEN 0 AND 5)
)"""

TABLES["prompt_variants"] = """
CREATE TABLE prompt_variants (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    agent_type      agent_type  NOT NULL,
    name            text        NOT NULL,
    description     text,
    prompt          text        NOT NULL,
    is_active       boolean     NOT NULL DEFAULT true,
    is_default      boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_prompt_variants PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_prompt_variants_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE
)"""

TABLES["clients"] = """
CREATE TABLE clients (
    id                  uuid          NOT NULL DEFAULT gen_random_uuid(),
    organization_id     uuid          NOT NULL,
    phone               text          NOT NULL,   -- E.164, e.g. +996555123456
    email               text,
    first_name          text,
    last_name           text,
    status              client_status NOT NULL DEFAULT 'NEW_LEAD',
    preferred_language  text,                     -- en, ru, ar, fr, de, es, pl
    cultural_context    jsonb,
    metadata            jsonb,
    assigned_partner_id uuid,
    prompt_variant_id   uuid,                     -- assigned A/B prompt variant
    created_at          timestamptz   NOT NULL DEFAULT now(),
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT pk_clients PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_clients_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_clients_assigned_partner_id FOREIGN KEY (organization_id, assigned_partner_id)
        REFERENCES partners (organization_id, id) ON DELETE SET NULL (assigned_partner_id),
    CONSTRAINT fk_clients_prompt_variant_id FOREIGN KEY (organization_id, prompt_variant_id)
        REFERENCES prompt_variants (organization_id, id) ON DELETE SET NULL (prompt_variant_id),
    CONSTRAINT uq_clients_organization_id_phone UNIQUE (organization_id, phone),
    CONSTRAINT ck_clients_phone_e164 CHECK (phone ~ '^\\+[1-9][0-9]{1,14}$')
)"""

TABLES["conversations"] = """
CREATE TABLE conversations (
    id              uuid                  NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid                  NOT NULL,
    client_id       uuid                  NOT NULL,
    channel         communication_channel NOT NULL DEFAULT 'WHATSAPP',
    status          conversation_status   NOT NULL DEFAULT 'ACTIVE',
    managed_by      conversation_manager  NOT NULL DEFAULT 'AI',
    last_message_at timestamptz,
    created_at      timestamptz           NOT NULL DEFAULT now(),
    updated_at      timestamptz           NOT NULL DEFAULT now(),
    CONSTRAINT pk_conversations PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_conversations_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_conversations_client_id FOREIGN KEY (organization_id, client_id)
        REFERENCES clients (organization_id, id) ON DELETE CASCADE
)"""

TABLES["messages"] = """
CREATE TABLE messages (
    id                  uuid              NOT NULL DEFAULT gen_random_uuid(),
    organization_id     uuid              NOT NULL,
    conversation_id     uuid              NOT NULL,
    direction           message_direction NOT NULL,
    sender              message_sender    NOT NULL,
    sender_id           uuid,             -- the user when sender = HUMAN, else NULL
    content             text              NOT NULL,
    language            text,
    translated_content  text,
    whatsapp_message_id text,
    status              message_status    NOT NULL DEFAULT 'SENT',
    error               text,
    created_at          timestamptz       NOT NULL DEFAULT now(),
    CONSTRAINT pk_messages PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_messages_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_messages_conversation_id FOREIGN KEY (organization_id, conversation_id)
        REFERENCES conversations (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_messages_sender_id FOREIGN KEY (organization_id, sender_id)
        REFERENCES users (organization_id, id) ON DELETE SET NULL (sender_id),
    CONSTRAINT uq_messages_organization_id_whatsapp_message_id
        UNIQUE (organization_id, whatsapp_message_id),
    CONSTRAINT ck_messages_direction_sender CHECK ((direction = 'INCOMING') = (sender = 'CLIENT')),
    CONSTRAINT ck_messages_sender_id CHECK (sender_id IS NULL OR sender = 'HUMAN')
)"""

TABLES["client_status_history"] = """
CREATE TABLE client_status_history (
    id                    uuid              NOT NULL DEFAULT gen_random_uuid(),
    organization_id       uuid              NOT NULL,
    client_id             uuid              NOT NULL,
    old_status            client_status,
    new_status            client_status     NOT NULL,
    changed_by            status_changed_by NOT NULL,
    changed_by_user_id    uuid,             -- the user who changed it, if a user did
    changed_by_agent_type agent_type,       -- the AI agent that changed it, if one did
    reason                text,
    created_at            timestamptz       NOT NULL DEFAULT now(),
    CONSTRAINT pk_client_status_history PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_client_status_history_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_client_status_history_client_id FOREIGN KEY (organization_id, client_id)
        REFERENCES clients (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_client_status_history_changed_by_user_id
        FOREIGN KEY (organization_id, changed_by_user_id)
        REFERENCES users (organization_id, id) ON DELETE SET NULL (changed_by_user_id),
    CONSTRAINT ck_client_status_history_agent
        CHECK (changed_by_agent_type IS NULL OR changed_by = 'AI')
)"""

TABLES["products"] = """
CREATE TABLE products (
    id              uuid          NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid          NOT NULL,
    name            text          NOT NULL,
    description     text,
    duration        integer,      -- days
    type            product_type  NOT NULL,
    base_price      numeric(12,2) NOT NULL,
    currency        char(3)       NOT NULL DEFAULT 'USD',
    inclusions      jsonb,
    exclusions      jsonb,
    options         jsonb,
    is_active       boolean       NOT NULL DEFAULT true,
    partner_id      uuid,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT pk_products PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_products_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_products_partner_id FOREIGN KEY (organization_id, partner_id)
        REFERENCES partners (organization_id, id) ON DELETE SET NULL (partner_id),
    CONSTRAINT ck_products_duration CHECK (duration > 0),
    CONSTRAINT ck_products_base_price CHECK (base_price >= 0),
    CONSTRAINT ck_products_currency CHECK (currency ~ '^[A-Z]{3}$')
)"""

TABLES["client_products"] = """
CREATE TABLE client_products (
    id              uuid                  NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid                  NOT NULL,
    client_id       uuid                  NOT NULL,
    product_id      uuid                  NOT NULL,
    status          client_product_status NOT NULL DEFAULT 'INTERESTED',
    notes           text,
    created_at      timestamptz           NOT NULL DEFAULT now(),
    updated_at      timestamptz           NOT NULL DEFAULT now(),
    CONSTRAINT pk_client_products PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_client_products_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_client_products_client_id FOREIGN KEY (organization_id, client_id)
        REFERENCES clients (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_client_products_product_id FOREIGN KEY (organization_id, product_id)
        REFERENCES products (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_client_products_organization_id_client_id_product_id
        UNIQUE (organization_id, client_id, product_id)
)"""

TABLES["tours"] = """
CREATE TABLE tours (
    id                   uuid          NOT NULL DEFAULT gen_random_uuid(),
    organization_id      uuid          NOT NULL,
    product_id           uuid          NOT NULL,   -- the product this tour is a dated instance of
    start_date           timestamptz   NOT NULL,
    end_date             timestamptz   NOT NULL,
    max_participants     integer,
    current_participants integer       NOT NULL DEFAULT 0,
    price                numeric(12,2),            -- overrides the product's base price
    currency             char(3)       NOT NULL DEFAULT 'USD',
    status               tour_status   NOT NULL DEFAULT 'AVAILABLE',
    notes                text,
    created_at           timestamptz   NOT NULL DEFAULT now(),
    updated_at           timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT pk_tours PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_tours_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_tours_product_id FOREIGN KEY (organization_id, product_id)
        REFERENCES products (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_tours_dates CHECK (end_date >= start_date),
    CONSTRAINT ck_tours_max_participants CHECK (max_participants > 0),
    CONSTRAINT ck_tours_current_participants CHECK (current_participants >= 0),
    CONSTRAINT ck_tours_capacity CHECK (current_participants <= max_participants),
    CONSTRAINT ck_tours_price CHECK (price >= 0),
    CONSTRAINT ck_tours_currency CHECK (currency ~ '^[A-Z]{3}$')
)"""

TABLES["client_tours"] = """
CREATE TABLE client_tours (
    id              uuid               NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid               NOT NULL,
    client_id       uuid               NOT NULL,
    tour_id         uuid               NOT NULL,
    status          client_tour_status NOT NULL DEFAULT 'INTERESTED',
    participants    integer,
    notes           text,
    created_at      timestamptz        NOT NULL DEFAULT now(),
    updated_at      timestamptz        NOT NULL DEFAULT now(),
    CONSTRAINT pk_client_tours PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_client_tours_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_client_tours_client_id FOREIGN KEY (organization_id, client_id)
        REFERENCES clients (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_client_tours_tour_id FOREIGN KEY (organization_id, tour_id)
        REFERENCES tours (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_client_tours_organization_id_client_id_tour_id
        UNIQUE (organization_id, client_id, tour_id),
    CONSTRAINT ck_client_tours_participants CHECK (participants > 0)
)"""

TABLES["agent_configurations"] = """
CREATE TABLE agent_configurations (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    agent_type      agent_type  NOT NULL,
    name            text        NOT NULL,
    prompt          text        NOT NULL,
    settings        jsonb,
    is_active       boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_agent_configurations PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_agent_configurations_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT uq_agent_configurations_organization_id_agent_type_name
        UNIQUE (organization_id, agent_type, name)
)"""

TABLES["experiments"] = """
CREATE TABLE experiments (
    id              uuid              NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid              NOT NULL,
    agent_type      agent_type        NOT NULL,
    name            text              NOT NULL,
    description     text,
    status          experiment_status NOT NULL DEFAULT 'ACTIVE',
    start_date      timestamptz       NOT NULL DEFAULT now(),
    end_date        timestamptz,
    created_at      timestamptz       NOT NULL DEFAULT now(),
    updated_at      timestamptz       NOT NULL DEFAULT now(),
    CONSTRAINT pk_experiments PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_experiments_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT ck_experiments_dates CHECK (end_date >= start_date)
)"""

# The seed's implicit many-to-many Experiment.variants <-> PromptVariant, made explicit with a
# traffic weight per variant (a variant gets weight / sum(weights) of the experiment's clients).
TABLES["experiment_variants"] = """
CREATE TABLE experiment_variants (
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id   uuid        NOT NULL,
    experiment_id     uuid        NOT NULL,
    prompt_variant_id uuid        NOT NULL,
    weight            integer     NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_experiment_variants PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_experiment_variants_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_experiment_variants_experiment_id FOREIGN KEY (organization_id, experiment_id)
        REFERENCES experiments (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_experiment_variants_prompt_variant_id
        FOREIGN KEY (organization_id, prompt_variant_id)
        REFERENCES prompt_variants (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_experiment_variants_organization_id_experiment_id_variant_id
        UNIQUE (organization_id, experiment_id, prompt_variant_id),
    CONSTRAINT ck_experiment_variants_weight CHECK (weight > 0)
)"""

TABLES["dialogue_analysis"] = """
CREATE TABLE dialogue_analysis (
    id                uuid          NOT NULL DEFAULT gen_random_uuid(),
    organization_id   uuid          NOT NULL,
    analysis_type     analysis_type NOT NULL,
    prompt_variant_id uuid,         -- the analysed prompt variant
    data              jsonb         NOT NULL,
    recommendations   jsonb,
    created_at        timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT pk_dialogue_analysis PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_dialogue_analysis_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_dialogue_analysis_prompt_variant_id
        FOREIGN KEY (organization_id, prompt_variant_id)
        REFERENCES prompt_variants (organization_id, id) ON DELETE SET NULL (prompt_variant_id)
)"""

TABLES["whatsapp_sessions"] = """
CREATE TABLE whatsapp_sessions (
    id                   uuid                    NOT NULL DEFAULT gen_random_uuid(),
    organization_id      uuid                    NOT NULL,
    status               whatsapp_session_status NOT NULL DEFAULT 'DISCONNECTED',
    qr_code              text,                   -- temporary QR code to pair the session
    last_connected_at    timestamptz,
    last_disconnected_at timestamptz,
    error_message        text,
    created_at           timestamptz             NOT NULL DEFAULT now(),
    updated_at           timestamptz             NOT NULL DEFAULT now(),
    CONSTRAINT pk_whatsapp_sessions PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_whatsapp_sessions_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT uq_whatsapp_sessions_organization_id UNIQUE (organization_id)
)"""

# Secondary indexes (unique ones are the constraints above). All lead with organization_id.
INDEXES = [
    "CREATE INDEX ix_refresh_tokens_organization_id_user_id ON refresh_tokens (organization_id, user_id)",
    "CREATE INDEX ix_refresh_tokens_organization_id_family_id ON refresh_tokens (organization_id, family_id)",
    "CREATE INDEX ix_partners_organization_id_is_available ON partners (organization_id, is_available)",
    "CREATE INDEX ix_prompt_variants_organization_id_agent_type ON prompt_variants (organization_id, agent_type)",
    "CREATE INDEX ix_prompt_variants_organization_id_is_active ON prompt_variants (organization_id, is_active)",
    "CREATE INDEX ix_clients_organization_id_status ON clients (organization_id, status)",
    "CREATE INDEX ix_clients_organization_id_created_at ON clients (organization_id, created_at)",
    "CREATE INDEX ix_clients_organization_id_assigned_partner_id ON clients (organization_id, assigned_partner_id)",
    "CREATE INDEX ix_clients_organization_id_prompt_variant_id ON clients (organization_id, prompt_variant_id)",
    "CREATE INDEX ix_conversations_organization_id_client_id ON conversations (organization_id, client_id)",
    "CREATE INDEX ix_conversations_organization_id_status ON conversations (organization_id, status)",
    "CREATE INDEX ix_conversations_organization_id_last_message_at"
    " ON conversations (organization_id, last_message_at)",
    "CREATE INDEX ix_messages_organization_id_conversation_id_created_at"
    " ON messages (organization_id, conversation_id, created_at)",
    "CREATE INDEX ix_messages_organization_id_created_at ON messages (organization_id, created_at)",
    "CREATE INDEX ix_messages_organization_id_sender_id ON messages (organization_id, sender_id)"
    " WHERE sender_id IS NOT NULL",
    "CREATE INDEX ix_client_status_history_organization_id_client_id_created_at"
    " ON client_status_history (organization_id, client_id, created_at)",
    "CREATE INDEX ix_client_status_history_organization_id_created_at"
    " ON client_status_history (organization_id, created_at)",
    "CREATE INDEX ix_client_status_history_organization_id_changed_by_user_id"
    " ON client_status_history (organization_id, changed_by_user_id) WHERE changed_by_user_id IS NOT NULL",
    "CREATE INDEX ix_products_organization_id_is_active ON products (organization_id, is_active)",
    "CREATE INDEX ix_products_organization_id_partner_id ON products (organization_id, partner_id)",
    "CREATE INDEX ix_client_products_organization_id_product_id ON client_products (organization_id, product_id)",
    "CREATE INDEX ix_tours_organization_id_product_id ON tours (organization_id, product_id)",
    "CREATE INDEX ix_tours_organization_id_start_date_end_date ON tours (organization_id, start_date, end_date)",
    "CREATE INDEX ix_tours_organization_id_status ON tours (organization_id, status)",
    "CREATE INDEX ix_client_tours_organization_id_tour_id ON client_tours (organization_id, tour_id)",
    "CREATE INDEX ix_agent_configurations_organization_id_is_active"
    " ON agent_configurations (organization_id, is_active)",
    "CREATE INDEX ix_experiments_organization_id_status ON experiments (organization_id, status)",
    "CREATE INDEX ix_experiments_organization_id_agent_type ON experiments (organization_id, agent_type)",
    "CREATE INDEX ix_experiment_variants_organization_id_prompt_variant_id"
    " ON experiment_variants (organization_id, prompt_variant_id)",
    "CREATE INDEX ix_dialogue_analysis_organization_id_created_at ON dialogue_analysis (organization_id, created_at)",
    "CREATE INDEX ix_dialogue_analysis_organization_id_analysis_type"
    " ON dialogue_analysis (organization_id, analysis_type)",
    "CREATE INDEX ix_dialogue_analysis_organization_id_prompt_variant_id"
    " ON dialogue_analysis (organization_id, prompt_variant_id) WHERE prompt_variant_id IS NOT NULL",
]

TENANT_TABLES = [name for name in TABLES if name != "organizations"]
# messages, client_status_history, dialogue_analysis and refresh_tokens are append-only records.
TABLES_WITH_UPDATED_AT = [
    "organizations", "users", "partners", "prompt_variants", "clients", "conversations", "products",
    "client_products", "tours", "client_tours", "agent_configurations", "experiments",
    "experiment_variants", "whatsapp_sessions",
]


def upgrade() -> None:
    # pgvector (for future RAG) is installed by provisioning, as a privileged role; this only
    # confirms it (a no-op notice when present).
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")

    # Tenancy helpers. Unset or empty setting -> NULL -> every policy is false -> no rows.
    op.execute("CREATE SCHEMA app")
    op.execute("""
        CREATE FUNCTION app.current_org() RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ select nullif(pg_catalog.current_setting('app.current_organization_id', true), '')::uuid $$
    """)
    op.execute("""
        CREATE FUNCTION app.touch_updated_at() RETURNS trigger
        LANGUAGE plpgsql
        AS $$ begin new.updated_at := now(); return new; end $$
    """)

    for type_name, labels in ENUMS.items():
        quoted = ", ".join(f"'{label}'" for label in labels)
        op.execute(f"CREATE TYPE {type_name} AS ENUM ({quoted})")

    for ddl in TABLES.values():
        op.execute(ddl)
    for ddl in INDEXES:
        op.execute(ddl)

    for table in TABLES_WITH_UPDATED_AT:
        op.execute(f"CREATE TRIGGER trg_{table}_touch_updated_at BEFORE UPDATE ON {table}"
                   " FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at()")

    # Row-level security: FORCE makes it apply to the owner too (who then sees nothing).
    for table in TABLES:
        key = "id" if table == "organizations" else "organization_id"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_tenant_isolation ON {table} FOR ALL TO {APP_ROLE}"
                   f" USING ({key} = (select app.current_org()))"
                   f" WITH CHECK ({key} = (select app.current_org()))")

    # The app role: read/write tenant rows; organizations are created by identity through a
    # SECURITY DEFINER function (later migration), never inserted or deleted directly.
    op.execute("REVOKE EXECUTE ON FUNCTION app.current_org() FROM PUBLIC")
    op.execute("REVOKE EXECUTE ON FUNCTION app.touch_updated_at() FROM PUBLIC")  # triggers need none
    op.execute(f"GRANT USAGE ON SCHEMA app, public TO {APP_ROLE}")
    op.execute(f"GRANT EXECUTE ON FUNCTION app.current_org() TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, UPDATE ON organizations TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TENANT_TABLES)} TO {APP_ROLE}")


def downgrade() -> None:
    # Policies, triggers, indexes and table grants go with their tables.
    for table in reversed(list(TABLES)):
        op.execute(f"DROP TABLE {table}")
    for type_name in reversed(list(ENUMS)):
        op.execute(f"DROP TYPE {type_name}")
    op.execute("DROP FUNCTION app.touch_updated_at()")
    op.execute("DROP FUNCTION app.current_org()")
    op.execute("DROP SCHEMA app")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
    # The vector extension belongs to provisioning and stays.
