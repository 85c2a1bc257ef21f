"""The shared service shape: request ids (AIP-155), the caller's current state, fewer indexes

- `request_ids`: one row per (organization, method, request id) of a create that named a
  request id, with the resource it created (libs/idempotency.py). Shared infrastructure of
  every service, under forced row-level security like every table.
- `auth.assert_caller(user, roles)`: every transaction of a user's call runs it in the same
  round trip as its settings (libs/tenancy/database.py). It raises SK401 when the user is
  deactivated or gone and SK403 when the user's current role is not one the method admits,
  so a demoted or deactivated user loses the power on the next call, not when the token
  expires. SECURITY DEFINER with a pinned search_path, like the other auth functions; it
  reads one users row of the transaction's own organization (a policy for the owner).
- 0003 made two of 0001's indexes redundant (a longer index with the same leading columns
  serves every query they served): dropped.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from libs.db.provision import APP_ROLE, OWNER_ROLE

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE request_ids (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    method          text        NOT NULL,
    request_id      uuid        NOT NULL,
    resource_id     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_request_ids PRIMARY KEY (organization_id, id),
    CONSTRAINT uq_request_ids_organization_id_method_request_id UNIQUE (organization_id, method, request_id),
    CONSTRAINT fk_request_ids_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE
)""")
    op.execute("CREATE INDEX ix_request_ids_organization_id_created_at ON request_ids (organization_id, created_at)")
    op.execute("ALTER TABLE request_ids ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE request_ids FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY request_ids_tenant_isolation ON request_ids FOR ALL TO {APP_ROLE}"
               " USING (organization_id = (select app.current_org()))"
               " WITH CHECK (organization_id = (select app.current_org()))")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON request_ids TO {APP_ROLE}")

    op.execute(f"""
CREATE POLICY users_owner_caller_check ON users
    FOR SELECT TO {OWNER_ROLE} USING (organization_id = (select app.current_org()))""")
    op.execute("""
CREATE FUNCTION auth.assert_caller(p_user uuid, p_roles text[]) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role text;
    v_active boolean;
BEGIN
    SELECT u.role::text, u.is_active INTO v_role, v_active FROM public.users u
        WHERE u.organization_id = app.current_org() AND u.id = p_user;
    IF NOT FOUND OR NOT v_active THEN
        RAISE EXCEPTION 'the user is deactivated or no longer exists' USING ERRCODE = 'SK401';
    END IF;
    IF cardinality(p_roles) > 0 AND NOT (v_role = ANY (p_roles)) THEN
        RAISE EXCEPTION 'the user''s current role does not allow this' USING ERRCODE = 'SK403';
    END IF;
END
$$""")
    op.execute("REVOKE ALL ON FUNCTION auth.assert_caller(uuid, text[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION auth.assert_caller(uuid, text[]) TO {APP_ROLE}")

    # Served by ix_clients_organization_id_created_at_id and
    # ix_client_status_history_organization_id_client_id_created_at_id (0003).
    op.execute("DROP INDEX ix_clients_organization_id_created_at")
    op.execute("DROP INDEX ix_client_status_history_organization_id_client_id_created_at")


def downgrade() -> None:
    op.execute("""CREATE INDEX ix_client_status_history_organization_id_client_id_created_at
                  ON client_status_history (organization_id, client_id, created_at)""")
    op.execute("CREATE INDEX ix_clients_organization_id_created_at ON clients (organization_id, created_at)")
    op.execute("DROP FUNCTION auth.assert_caller(uuid, text[])")
    op.execute("DROP POLICY users_owner_caller_check ON users")
    op.execute("DROP TABLE request_ids")
