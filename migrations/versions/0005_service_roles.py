"""Each service's role gets privileges on the tables it owns, and no others

Until now every service connected as `soulkg_app`, with SELECT, INSERT, UPDATE and DELETE on
every tenant table. Now each service connects as its own role (created by provisioning,
libs/db/provision.py, before migrations run: roles are cluster-wide), a member of
`soulkg_app`, which stays the target of every policy and keeps its schema USAGE and function
EXECUTE grants but loses every table privilege. Each role gets exactly its own tables
(DESIGN.md section 1), plus the shared `request_ids` (AIP-155, every service's creates).
Foreign keys across services keep working: their checks do not need privileges on the
referenced table.

`ROLE_TABLES` is a frozen copy of libs/registry.py at this revision (a migration is history;
a later change of ownership is a later migration). tests/test_schema_catalog.py checks that
the database's grants equal the registry.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from libs.db.provision import APP_ROLE

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

READ_WRITE = "SELECT, INSERT, UPDATE, DELETE"
# Organizations are created through auth.create_organization and never deleted by a service.
ORGANIZATIONS_PRIVILEGES = "SELECT, UPDATE"
SHARED_TABLES = ("request_ids",)

ROLE_TABLES: dict[str, tuple[str, ...]] = {
    "soulkg_identity": ("organizations", "users", "refresh_tokens"),
    "soulkg_crm": ("clients", "client_status_history"),
    "soulkg_messaging": ("conversations", "messages", "whatsapp_sessions"),
    "soulkg_catalog": ("partners", "products", "tours", "client_products", "client_tours"),
    "soulkg_agents": ("agent_configurations", "prompt_variants", "experiments", "experiment_variants",
                      "dialogue_analysis"),
}

# What 0004 left soulkg_app (restored by the downgrade).
TENANT_TABLES = (*[t for tables in ROLE_TABLES.values() for t in tables if t != "organizations"],
                 *SHARED_TABLES)


def _privileges(table: str) -> str:
    return ORGANIZATIONS_PRIVILEGES if table == "organizations" else READ_WRITE


def upgrade() -> None:
    op.execute(f"REVOKE ALL ON organizations, {', '.join(TENANT_TABLES)} FROM {APP_ROLE}")
    for role, tables in ROLE_TABLES.items():
        for table in tables:
            op.execute(f"GRANT {_privileges(table)} ON {table} TO {role}")
        for table in SHARED_TABLES:
            op.execute(f"GRANT {READ_WRITE} ON {table} TO {role}")


def downgrade() -> None:
    roles = ", ".join(ROLE_TABLES)
    op.execute(f"REVOKE ALL ON organizations, {', '.join(TENANT_TABLES)} FROM {roles}")
    op.execute(f"GRANT {ORGANIZATIONS_PRIVILEGES} ON organizations TO {APP_ROLE}")
    op.execute(f"GRANT {READ_WRITE} ON {', '.join(TENANT_TABLES)} TO {APP_ROLE}")
