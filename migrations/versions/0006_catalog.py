"""catalog: keyset indexes for its lists, held seats need participants, seats released on delete

Indexes (each leads with organization_id; each list pages by its sort key plus id, so a page
deep in a list costs what the first one does):

- partners and products: ListPartners/ListProducts by `name` (default) or `create_time desc`
  -> (organization_id, name, id) and (organization_id, created_at, id).
- tours: ListTours by (start_date, end_date, id), alone or with `product_id = ` or
  `status = ` -> (organization_id, start_date, end_date, id), (organization_id, product_id,
  start_date, end_date, id), (organization_id, status, start_date, end_date, id). They replace
  0001's (organization_id, start_date, end_date), (organization_id, product_id) and
  (organization_id, status), whose columns they start with (the seed's indexes stay served).
- client_tours (bookings) and client_products (interests): newest first, alone, by client or
  by tour/product -> (organization_id, created_at, id), (organization_id, client_id,
  created_at, id), (organization_id, tour_id | product_id, created_at, id); the last replaces
  0001's (organization_id, tour_id | product_id). The unique (organization_id, client_id,
  tour_id | product_id) keys stay: they are the seed's one-per-client-and-tour/product rules.

`ck_client_tours_held_participants`: a booking that holds seats (BOOKED, CONFIRMED) says how
many; the seat count of its tour is the sum of exactly these.

`trg_client_tours_release_seats`: the catalog keeps `tours.current_participants` equal to the
participants of the tour's BOOKED and CONFIRMED bookings under the tour's row lock. One path
bypasses the catalog: a booking row deleted by a cascade, when crm deletes a client (the
foreign key is ON DELETE CASCADE). This trigger gives that booking's seats back to its tour
(a FULL tour turns AVAILABLE) in the deleting transaction, whoever deletes. The UPDATE takes
the tour's row lock like every booking does. SECURITY DEFINER (owner), because the deleting
role is crm's, which has no privilege on catalog's tables: the owner gets a policy on `tours`
limited to the transaction's own organization, so the function still touches only that
organization's tour.

No new columns: the seed's columns carry everything the catalog needs.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from libs.db.provision import OWNER_ROLE

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NEW_INDEXES = {
    "ix_partners_organization_id_name_id": "partners (organization_id, name, id)",
    "ix_partners_organization_id_created_at_id": "partners (organization_id, created_at, id)",
    "ix_products_organization_id_name_id": "products (organization_id, name, id)",
    "ix_products_organization_id_created_at_id": "products (organization_id, created_at, id)",
    "ix_tours_organization_id_start_date_end_date_id": "tours (organization_id, start_date, end_date, id)",
    "ix_tours_organization_id_product_id_start_date_end_date_id":
        "tours (organization_id, product_id, start_date, end_date, id)",
    "ix_tours_organization_id_status_start_date_end_date_id":
        "tours (organization_id, status, start_date, end_date, id)",
    "ix_client_tours_organization_id_created_at_id": "client_tours (organization_id, created_at, id)",
    "ix_client_tours_organization_id_client_id_created_at_id":
        "client_tours (organization_id, client_id, created_at, id)",
    "ix_client_tours_organization_id_tour_id_created_at_id":
        "client_tours (organization_id, tour_id, created_at, id)",
    "ix_client_products_organization_id_created_at_id": "client_products (organization_id, created_at, id)",
    "ix_client_products_organization_id_client_id_created_at_id":
        "client_products (organization_id, client_id, created_at, id)",
    "ix_client_products_organization_id_product_id_created_at_id":
        "client_products (organization_id, product_id, created_at, id)",
}
# 0001's indexes that a new one above starts with (same leading columns): dropped.
REPLACED_INDEXES = {
    "ix_tours_organization_id_start_date_end_date": "tours (organization_id, start_date, end_date)",
    "ix_tours_organization_id_product_id": "tours (organization_id, product_id)",
    "ix_tours_organization_id_status": "tours (organization_id, status)",
    "ix_client_tours_organization_id_tour_id": "client_tours (organization_id, tour_id)",
    "ix_client_products_organization_id_product_id": "client_products (organization_id, product_id)",
}


def upgrade() -> None:
    for name, target in NEW_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {target}")
    for name in REPLACED_INDEXES:
        op.execute(f"DROP INDEX {name}")

    op.execute("""ALTER TABLE client_tours ADD CONSTRAINT ck_client_tours_held_participants
                  CHECK (status NOT IN ('BOOKED', 'CONFIRMED') OR participants IS NOT NULL)""")

    op.execute("""
CREATE FUNCTION app.release_booking_seats() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF old.status IN ('BOOKED', 'CONFIRMED') THEN
        UPDATE public.tours
           SET current_participants = current_participants - old.participants,
               status = CASE WHEN status = 'FULL' THEN 'AVAILABLE'::public.tour_status ELSE status END
         WHERE organization_id = old.organization_id AND id = old.tour_id;
    END IF;
    RETURN NULL;
END
$$""")
    op.execute("REVOKE ALL ON FUNCTION app.release_booking_seats() FROM PUBLIC")
    for command in ("SELECT", "UPDATE"):
        op.execute(f"""CREATE POLICY tours_owner_release_seats_{command.lower()} ON tours FOR {command}
                       TO {OWNER_ROLE} USING (organization_id = (select app.current_org()))""")
    op.execute("""CREATE TRIGGER trg_client_tours_release_seats AFTER DELETE ON client_tours
                  FOR EACH ROW EXECUTE FUNCTION app.release_booking_seats()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_client_tours_release_seats ON client_tours")
    op.execute("DROP POLICY tours_owner_release_seats_update ON tours")
    op.execute("DROP POLICY tours_owner_release_seats_select ON tours")
    op.execute("DROP FUNCTION app.release_booking_seats()")
    op.execute("ALTER TABLE client_tours DROP CONSTRAINT ck_client_tours_held_participants")
    for name, target in REPLACED_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {target}")
    for name in NEW_INDEXES:
        op.execute(f"DROP INDEX {name}")
