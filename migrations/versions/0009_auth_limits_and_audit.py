"""identity: brute-force limits, single-use service assertions, the audit log

- `auth_limits`: the limiter's counters (services/identity, README "Brute-force limits"),
  shared by every identity process through the database. Not a tenant table: a login attempt
  is limited before its organization is known (the slug may name none), and per-address
  limits span organizations. It holds no tenant data: a row is keyed by the SHA-256 digest
  of what it counts (`login.account` + slug + email, `login.address` + address, ...) and
  carries only counters and times. Row-level security is enabled and forced like on every
  table, with one policy, for the owner; the services' roles hold no privilege on it and
  reach it only through two SECURITY DEFINER functions (pinned search_path, EXECUTE for
  identity's role only), like the other steps before an organization is known (0002):
  - `auth.limit_attempt(keys, attempts, windows, locks, max_locks)` counts one attempt
    against each key and answers how long the caller must wait (zero: go ahead). A key that
    is locked answers from one index read and writes nothing, so refused attempts cost
    almost nothing; keys are counted in a fixed order, so concurrent calls never deadlock.
  - `auth.limit_settle(clear, refund)`: after a success, forget some keys' counts (the
    account's) and give one attempt back to others (the address's).
- `service_assertions`: the `jti` of every service assertion exchanged by
  IssueServiceToken, kept until the assertion expires, so that each works once. A tenant
  table (the assertion names its organization and is verified before it is recorded).
- `audit_events`: the append-only audit log (libs/audit.py), tenant-scoped. Every service's
  role may INSERT (each records its own actions in the transaction of the change); only
  identity's may read it (AuditService/ListAuditEvents); no role may UPDATE or DELETE it.

`ROLE_TABLES` is libs/registry.py's ownership at this revision (0005's map plus identity's
three new tables); tests/test_schema_catalog.py checks the grants against the registry.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from libs.db.provision import APP_ROLE, OWNER_ROLE

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ROLE_TABLES: dict[str, tuple[str, ...]] = {
    "soulkg_identity": ("organizations", "users", "refresh_tokens", "service_assertions", "auth_limits",
                        "audit_events"),
    "soulkg_crm": ("clients", "client_status_history"),
    "soulkg_messaging": ("conversations", "messages", "whatsapp_sessions"),
    "soulkg_catalog": ("partners", "products", "tours", "client_products", "client_tours"),
    "soulkg_agents": ("agent_configurations", "prompt_variants", "experiments", "experiment_variants",
                      "dialogue_analysis"),
}
IDENTITY_ROLE = "soulkg_identity"
LIMIT_FUNCTIONS = ("limit_attempt(bytea[], integer[], interval[], interval[], interval[])",
                   "limit_settle(bytea[], bytea[])")


def _tenant_policy(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY {table}_tenant_isolation ON {table} FOR ALL TO {APP_ROLE}"
               " USING (organization_id = (select app.current_org()))"
               " WITH CHECK (organization_id = (select app.current_org()))")


def upgrade() -> None:
    # --- the limiter ------------------------------------------------------------------------
    op.execute("""
CREATE TABLE auth_limits (
    key           bytea       NOT NULL,
    window_start  timestamptz NOT NULL,
    attempts      integer     NOT NULL,
    strikes       integer     NOT NULL DEFAULT 0,
    blocked_until timestamptz,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_auth_limits PRIMARY KEY (key),
    CONSTRAINT ck_auth_limits_key CHECK (octet_length(key) = 32)
)""")
    op.execute("CREATE INDEX ix_auth_limits_expires_at ON auth_limits (expires_at)")
    op.execute("ALTER TABLE auth_limits ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE auth_limits FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY auth_limits_owner ON auth_limits FOR ALL TO {OWNER_ROLE} USING (true) WITH CHECK (true)")
    op.execute("""
CREATE FUNCTION auth.limit_attempt(p_keys bytea[], p_attempts integer[], p_windows interval[],
                                   p_locks interval[], p_max_locks interval[])
    RETURNS TABLE (retry_after interval, key_index integer, locked_now boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now   timestamptz := clock_timestamp();
    v_until timestamptz;
    v_i     integer;
    v_row   public.auth_limits;
BEGIN
    -- A locked key: refused from one index read, nothing written.
    SELECT l.blocked_until, array_position(p_keys, l.key) INTO v_until, v_i
        FROM public.auth_limits l
        WHERE l.key = ANY (p_keys) AND l.blocked_until > v_now
        ORDER BY l.blocked_until DESC LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT v_until - v_now, v_i, false;
        RETURN;
    END IF;
    -- Count the attempt against each key, in key order (concurrent calls never deadlock).
    FOR v_i IN SELECT u.i FROM unnest(p_keys) WITH ORDINALITY AS u(k, i) ORDER BY u.k LOOP
        INSERT INTO public.auth_limits (key, window_start, attempts, expires_at)
            VALUES (p_keys[v_i], v_now, 0, v_now + p_windows[v_i])
            ON CONFLICT (key) DO NOTHING;
        SELECT * INTO v_row FROM public.auth_limits WHERE key = p_keys[v_i] FOR UPDATE;
        IF v_row.blocked_until > v_now THEN  -- locked by a concurrent attempt meanwhile
            RETURN QUERY SELECT v_row.blocked_until - v_now, v_i, false;
            RETURN;
        END IF;
        IF v_now >= v_row.window_start + p_windows[v_i] THEN
            -- A new window; a whole window without a lock forgets the earlier locks.
            v_row.window_start := v_now;
            v_row.attempts := 0;
            v_row.strikes := 0;
        END IF;
        v_row.attempts := v_row.attempts + 1;
        IF v_row.attempts > p_attempts[v_i] THEN
            IF p_locks[v_i] <= interval '0' THEN
                -- A plain rate: refused until the window ends.
                v_row.blocked_until := v_row.window_start + p_windows[v_i];
            ELSE
                -- A lock, doubled for each lock in a row; a fresh window starts when it ends.
                v_row.blocked_until := v_now + least(p_locks[v_i] * power(2, least(v_row.strikes, 20)),
                                                     greatest(p_max_locks[v_i], p_locks[v_i]));
                v_row.strikes := v_row.strikes + 1;
                v_row.window_start := v_row.blocked_until;
                v_row.attempts := 0;
            END IF;
        END IF;
        UPDATE public.auth_limits
            SET window_start = v_row.window_start, attempts = v_row.attempts, strikes = v_row.strikes,
                blocked_until = v_row.blocked_until,
                expires_at = greatest(v_row.window_start + p_windows[v_i], v_row.blocked_until)
            WHERE key = p_keys[v_i];
        IF v_row.blocked_until > v_now THEN
            RETURN QUERY SELECT v_row.blocked_until - v_now, v_i, true;
            RETURN;
        END IF;
    END LOOP;
    -- Now and then, sweep rows that no longer count anything.
    IF random() < 0.01 THEN
        DELETE FROM public.auth_limits WHERE key IN (
            SELECT l.key FROM public.auth_limits l WHERE l.expires_at < v_now
            LIMIT 1000 FOR UPDATE SKIP LOCKED);
    END IF;
    RETURN QUERY SELECT interval '0', 0, false;
END
$$""")
    op.execute("""
CREATE FUNCTION auth.limit_settle(p_clear bytea[], p_refund bytea[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM public.auth_limits WHERE key = ANY (p_clear);
    UPDATE public.auth_limits SET attempts = attempts - 1 WHERE key = ANY (p_refund) AND attempts > 0;
$$""")
    for signature in LIMIT_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION auth.{signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION auth.{signature} TO {IDENTITY_ROLE}")

    # --- single-use service assertions --------------------------------------------------------
    op.execute("""
CREATE TABLE service_assertions (
    organization_id uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    service_name    text        NOT NULL,
    jti             text        NOT NULL,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_service_assertions PRIMARY KEY (organization_id, id),
    CONSTRAINT uq_service_assertions_organization_id_service_name_jti UNIQUE (organization_id, service_name, jti),
    CONSTRAINT fk_service_assertions_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE
)""")
    op.execute("CREATE INDEX ix_service_assertions_organization_id_expires_at"
               " ON service_assertions (organization_id, expires_at)")
    _tenant_policy("service_assertions")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON service_assertions TO {IDENTITY_ROLE}")

    # --- the audit log ----------------------------------------------------------------------
    op.execute(r"""
CREATE TABLE audit_events (
    organization_id uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_kind      text        NOT NULL,
    actor_id        text,
    action          text        NOT NULL,
    target_type     text,
    target_id       text,
    client_address  inet,
    request_id      text,
    details         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pk_audit_events PRIMARY KEY (organization_id, id),
    CONSTRAINT ck_audit_events_actor_kind CHECK (actor_kind IN ('USER', 'SERVICE', 'ANONYMOUS')),
    CONSTRAINT ck_audit_events_action CHECK (action ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$'),
    CONSTRAINT ck_audit_events_details CHECK (jsonb_typeof(details) = 'object'),
    CONSTRAINT fk_audit_events_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE
)""")
    op.execute("CREATE INDEX ix_audit_events_organization_id_created_at_id ON audit_events"
               " (organization_id, created_at, id)")
    op.execute("CREATE INDEX ix_audit_events_organization_id_action_created_at ON audit_events"
               " (organization_id, action, created_at)")
    _tenant_policy("audit_events")
    for role in ROLE_TABLES:
        op.execute(f"GRANT INSERT ON audit_events TO {role}")
    op.execute(f"GRANT SELECT ON audit_events TO {IDENTITY_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE audit_events")
    op.execute("DROP TABLE service_assertions")
    for signature in LIMIT_FUNCTIONS:
        op.execute(f"DROP FUNCTION auth.{signature}")
    op.execute("DROP TABLE auth_limits")
