"""identity: narrow SECURITY DEFINER functions for the steps before an organization is known

The services' role never bypasses row-level security. Two things identity must do before
it knows the caller's organization get a function each, owned by the owner role, with a
pinned search_path and EXECUTE granted to the services' role only:

- auth.organization_id_by_slug(slug): Login names the organization by slug. Returns only
  the id (NULL when unknown); everything after it runs under RLS as that organization.
- auth.create_organization(id, name, slug): SignUp. The services' role has no INSERT on
  organizations; the function inserts exactly one row whose id must equal the transaction's
  app.current_organization_id, so the user row that follows in the same transaction is
  checked by the ordinary policies.

FORCE ROW LEVEL SECURITY applies to the owner too, so the owner gets two policies on
organizations that are only reachable through these functions (nobody logs in as owner).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from libs.db.provision import APP_ROLE, OWNER_ROLE

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA auth")
    op.execute(f"""
CREATE POLICY organizations_owner_slug_lookup ON organizations
    FOR SELECT TO {OWNER_ROLE} USING (true)""")
    op.execute(f"""
CREATE POLICY organizations_owner_create ON organizations
    FOR INSERT TO {OWNER_ROLE} WITH CHECK (id = (select app.current_org()))""")
    op.execute("""
CREATE FUNCTION auth.organization_id_by_slug(p_slug text) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT o.id FROM public.organizations o WHERE o.slug = p_slug $$""")
    op.execute("""
CREATE FUNCTION auth.create_organization(p_id uuid, p_name text, p_slug text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_id IS NULL OR p_id IS DISTINCT FROM app.current_org() THEN
        RAISE EXCEPTION 'organization id must equal app.current_organization_id'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO public.organizations (id, name, slug) VALUES (p_id, p_name, p_slug);
END
$$""")
    for signature in ("organization_id_by_slug(text)", "create_organization(uuid, text, text)"):
        op.execute(f"REVOKE ALL ON FUNCTION auth.{signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION auth.{signature} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE ON SCHEMA auth TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP SCHEMA auth CASCADE")
    op.execute("DROP POLICY organizations_owner_create ON organizations")
    op.execute("DROP POLICY organizations_owner_slug_lookup ON organizations")
