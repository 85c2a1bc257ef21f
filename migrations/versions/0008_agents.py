"""agents: sticky experiment assignments, goals, one default / active / live per agent type,
the revision ResolvePrompt's cache is checked against

- `experiment_assignments`: one row per (organization, experiment, client), written the
  first time a client is resolved while the experiment is ACTIVE and never changed after.
  Its variant is one of the experiment's variants by a three-column foreign key to
  experiment_variants (organization_id, experiment_id, prompt_variant_id); a deleted client
  takes its assignments with it (ON DELETE CASCADE). `weights_version` is the version of the
  experiment's weights the client was assigned under (the sample ratio check compares each
  version's assignments with that version's weights); `mirrored_at` is when crm's
  clients.prompt_variant_id was set to it through crm's API (NULL: not yet, retried on the
  client's next resolve).
- `experiments`: `goal_status` (the client status that counts as a conversion; SOLD by
  default), `weights_version` and `weights_history` (the weights of earlier versions, so a
  weight change leaves earlier assignments judged by the weights they were made under).
  `start_date` becomes nullable: an experiment is created PAUSED with no start date and
  gets one when first started (the seed's statuses have no "draft").
- `experiment_variants`: `is_control` (at most one per experiment, by a partial unique
  index), and weights may be 0 (a variant that gets no new clients; the sum is checked by
  the service).
- Race-safe by the database, as partial unique indexes:
  * one default prompt variant per agent type,
  * one active agent configuration per agent type,
  * one live experiment per agent type (ACTIVE, or PAUSED after it started: a paused
    experiment still serves its assigned clients, so a second one must not start beside it).
- `agent_revisions`: one row per organization, its `revision` incremented by a statement
  trigger on every write to agent_configurations, prompt_variants, experiments and
  experiment_variants, in the writing transaction. ResolvePrompt's per-process cache of
  what it reads from those tables is valid while the revision it read in its own
  transaction is the one the cache was filled at (services/agents/cache.py).

Grants: soulkg_agents reads and writes the two new tables (and no other role does).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from libs.db.provision import APP_ROLE

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

AGENTS_ROLE = "soulkg_agents"
NEW_TABLES = ("agent_revisions", "experiment_assignments")
# The tables whose rows ResolvePrompt caches (a write to any bumps the organization's revision).
CACHED_TABLES = ("agent_configurations", "prompt_variants", "experiments", "experiment_variants")


def upgrade() -> None:
    op.execute("ALTER TABLE experiments ADD COLUMN goal_status client_status NOT NULL DEFAULT 'SOLD'")
    op.execute("ALTER TABLE experiments ADD COLUMN weights_version integer NOT NULL DEFAULT 1")
    op.execute("ALTER TABLE experiments ADD COLUMN weights_history jsonb NOT NULL DEFAULT '[]'")
    op.execute("ALTER TABLE experiments ADD CONSTRAINT ck_experiments_weights_version CHECK (weights_version >= 1)")
    # A goal is a funnel stage a client can move to: not the first one, not the exit.
    op.execute("ALTER TABLE experiments ADD CONSTRAINT ck_experiments_goal_status"
               " CHECK (goal_status NOT IN ('NEW_LEAD', 'CLOSED'))")
    op.execute("ALTER TABLE experiments ALTER COLUMN start_date DROP NOT NULL")

    op.execute("ALTER TABLE experiment_variants ADD COLUMN is_control boolean NOT NULL DEFAULT false")
    op.execute("ALTER TABLE experiment_variants DROP CONSTRAINT ck_experiment_variants_weight")
    op.execute("ALTER TABLE experiment_variants ADD CONSTRAINT ck_experiment_variants_weight CHECK (weight >= 0)")

    op.execute("""
CREATE UNIQUE INDEX uq_experiment_variants_organization_id_experiment_id_control
    ON experiment_variants (organization_id, experiment_id) WHERE is_control""")
    op.execute("""
CREATE UNIQUE INDEX uq_prompt_variants_organization_id_agent_type_default
    ON prompt_variants (organization_id, agent_type) WHERE is_default""")
    op.execute("""
CREATE UNIQUE INDEX uq_agent_configurations_organization_id_agent_type_active
    ON agent_configurations (organization_id, agent_type) WHERE is_active""")
    op.execute("""
CREATE UNIQUE INDEX uq_experiments_organization_id_agent_type_live
    ON experiments (organization_id, agent_type)
    WHERE status = 'ACTIVE' OR (status = 'PAUSED' AND start_date IS NOT NULL)""")

    op.execute("""
CREATE TABLE experiment_assignments (
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id   uuid        NOT NULL,
    experiment_id     uuid        NOT NULL,
    client_id         uuid        NOT NULL,
    prompt_variant_id uuid        NOT NULL,
    weights_version   integer     NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    mirrored_at       timestamptz,
    CONSTRAINT pk_experiment_assignments PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_experiment_assignments_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT fk_experiment_assignments_variant
        FOREIGN KEY (organization_id, experiment_id, prompt_variant_id)
        REFERENCES experiment_variants (organization_id, experiment_id, prompt_variant_id) ON DELETE CASCADE,
    CONSTRAINT fk_experiment_assignments_client_id FOREIGN KEY (organization_id, client_id)
        REFERENCES clients (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_experiment_assignments_organization_id_experiment_client
        UNIQUE (organization_id, experiment_id, client_id)
)""")
    # The variant foreign key's index, covering what GetExperimentResults reads (index-only).
    op.execute("""
CREATE INDEX ix_experiment_assignments_organization_id_experiment_id_variant
    ON experiment_assignments (organization_id, experiment_id, prompt_variant_id)
    INCLUDE (client_id, created_at, weights_version)""")
    op.execute("""
CREATE INDEX ix_experiment_assignments_organization_id_client_id
    ON experiment_assignments (organization_id, client_id)""")

    op.execute("""
CREATE TABLE agent_revisions (
    id              uuid   NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid   NOT NULL,
    revision        bigint NOT NULL DEFAULT 1,
    CONSTRAINT pk_agent_revisions PRIMARY KEY (organization_id, id),
    CONSTRAINT fk_agent_revisions_organization_id FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT uq_agent_revisions_organization_id UNIQUE (organization_id)
)""")
    # Runs as the writing role (soulkg_agents), under its organization's policy. No
    # organization set (a migration, an organization's cascade delete): nothing to bump.
    op.execute("""
CREATE FUNCTION app.bump_agent_revision() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF app.current_org() IS NOT NULL THEN
        INSERT INTO public.agent_revisions AS r (organization_id) VALUES (app.current_org())
            ON CONFLICT (organization_id) DO UPDATE SET revision = r.revision + 1;
    END IF;
    RETURN NULL;
END
$$""")
    op.execute("REVOKE EXECUTE ON FUNCTION app.bump_agent_revision() FROM PUBLIC")  # triggers need none
    for table in CACHED_TABLES:
        op.execute(f"CREATE TRIGGER trg_{table}_bump_agent_revision AFTER INSERT OR UPDATE OR DELETE"
                   f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION app.bump_agent_revision()")

    for table in NEW_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_tenant_isolation ON {table} FOR ALL TO {APP_ROLE}"
                   " USING (organization_id = (select app.current_org()))"
                   " WITH CHECK (organization_id = (select app.current_org()))")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {AGENTS_ROLE}")


def downgrade() -> None:
    for table in CACHED_TABLES:
        op.execute(f"DROP TRIGGER trg_{table}_bump_agent_revision ON {table}")
    op.execute("DROP FUNCTION app.bump_agent_revision()")
    for table in reversed(NEW_TABLES):
        op.execute(f"DROP TABLE {table}")
    op.execute("DROP INDEX uq_experiments_organization_id_agent_type_live")
    op.execute("DROP INDEX uq_agent_configurations_organization_id_agent_type_active")
    op.execute("DROP INDEX uq_prompt_variants_organization_id_agent_type_default")
    op.execute("DROP INDEX uq_experiment_variants_organization_id_experiment_id_control")
    # The owner sees rows only with FORCE lifted (it has no policy of its own).
    for table in ("experiments", "experiment_variants"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute("UPDATE experiment_variants SET weight = 1 WHERE weight = 0")  # 0001 cannot express 0
    op.execute("ALTER TABLE experiment_variants DROP CONSTRAINT ck_experiment_variants_weight")
    op.execute("ALTER TABLE experiment_variants ADD CONSTRAINT ck_experiment_variants_weight CHECK (weight > 0)")
    op.execute("ALTER TABLE experiment_variants DROP COLUMN is_control")
    op.execute("UPDATE experiments SET start_date = created_at WHERE start_date IS NULL")
    op.execute("ALTER TABLE experiments ALTER COLUMN start_date SET NOT NULL")
    for table in ("experiments", "experiment_variants"):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE experiments DROP CONSTRAINT ck_experiments_goal_status")
    op.execute("ALTER TABLE experiments DROP CONSTRAINT ck_experiments_weights_version")
    op.execute("ALTER TABLE experiments DROP COLUMN weights_history")
    op.execute("ALTER TABLE experiments DROP COLUMN weights_version")
    op.execute("ALTER TABLE experiments DROP COLUMN goal_status")
