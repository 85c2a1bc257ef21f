"""crm: indexes for ListClients' keyset pages

ListClients pages by (created_at, id) or (updated_at, id), newest first, within one
organization. The seed's (organization_id, created_at) serves the first; the second needs
its own index. Both carry id so that the keyset comparison is an index range.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_clients_organization_id_created_at_id ON clients (organization_id, created_at, id)")
    op.execute("CREATE INDEX ix_clients_organization_id_updated_at_id ON clients (organization_id, updated_at, id)")
    op.execute("""CREATE INDEX ix_client_status_history_organization_id_client_id_created_at_id
                  ON client_status_history (organization_id, client_id, created_at, id)""")


def downgrade() -> None:
    op.execute("DROP INDEX ix_client_status_history_organization_id_client_id_created_at_id")
    op.execute("DROP INDEX ix_clients_organization_id_updated_at_id")
    op.execute("DROP INDEX ix_clients_organization_id_created_at_id")
