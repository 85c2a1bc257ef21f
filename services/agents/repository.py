"""agents' data access: all of agents' SQL (plain SQL over asyncpg, inside TenantDatabase
transactions), the compilation of list filters, and the translation of constraint
violations into domain errors. Returns entities (services/agents/domain.py).

Every statement states the organization (`IN_ORG`, or `(SELECT app.current_org())` for an
insert) although row-level security already enforces it: see libs/persistence.py.

"One per agent type" (the default variant, the active configuration, the live experiment)
is a partial unique index each (migrations/versions/0009). Moving the default or the
active configuration from one row to another takes a transaction-scoped advisory lock per
(organization, agent type) first, so racing moves queue up and each succeeds, instead of
all but one failing on the index; starting an experiment relies on the index alone (the
loser is told another experiment is running).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from libs.filtering import (
    EQUALITY,
    ORDERING,
    FilterField,
    compile_filter,
    to_bool,
    to_enum_label,
    to_timestamp,
    to_uuid,
)
from libs.persistence import IN_ORG, PageRequest, etag_of, insert_sql, keyset_after, update_sql
from libs.tenancy.database import ReadConnection
from services.agents import domain
from services.agents.domain import (
    AgentConfiguration,
    Assignment,
    DialogueAnalysis,
    Experiment,
    ExperimentVariant,
    LiveExperiment,
    Plan,
    PlanVariant,
    PromptVariant,
    WeightsVersion,
)

# --- columns, casts, filters ---------------------------------------------------------------------

CONFIGURATION_COLUMNS = ("id, agent_type::text, name, prompt, settings::text, is_active, created_at, updated_at")
CONFIGURATION_CASTS = {"agent_type": "::agent_type", "name": "", "prompt": "", "settings": "::jsonb",
                       "is_active": ""}
VARIANT_COLUMNS = ("id, agent_type::text, name, description, prompt, is_active, is_default, created_at, "
                   "updated_at")
VARIANT_CASTS = {"agent_type": "::agent_type", "name": "", "description": "", "prompt": "", "is_active": "",
                 "is_default": ""}
EXPERIMENT_COLUMNS = ("id, agent_type::text, name, description, status::text, goal_status::text, start_date, "
                      "end_date, weights_version, weights_history::text, created_at, updated_at")
EXPERIMENT_CASTS = {"agent_type": "::agent_type", "name": "", "description": "", "goal_status": "::client_status",
                    "weights_version": "", "weights_history": "::jsonb"}
ANALYSIS_COLUMNS = ("id, analysis_type::text, prompt_variant_id, data::text, recommendations::text, created_at")
ANALYSIS_CASTS = {"analysis_type": "::analysis_type", "prompt_variant_id": "::uuid", "data": "::jsonb",
                  "recommendations": "::jsonb"}
ASSIGNMENT_COLUMNS = "experiment_id, client_id, prompt_variant_id, weights_version, created_at, mirrored_at"

_CREATED = FilterField("created_at", ORDERING, to_timestamp)
CONFIGURATION_FILTERS = {
    "agent_type": FilterField("agent_type::text", EQUALITY, to_enum_label(domain.AGENT_TYPES, "AGENT_TYPE_")),
    "is_active": FilterField("is_active", EQUALITY, to_bool),
    "create_time": _CREATED,
}
VARIANT_FILTERS = {**CONFIGURATION_FILTERS, "is_default": FilterField("is_default", EQUALITY, to_bool)}
EXPERIMENT_FILTERS = {
    "agent_type": CONFIGURATION_FILTERS["agent_type"],
    "status": FilterField("status::text", EQUALITY, to_enum_label(domain.EXPERIMENT_STATUSES, "EXPERIMENT_STATUS_")),
    "create_time": _CREATED,
}
ANALYSIS_FILTERS = {
    "analysis_type": FilterField("analysis_type::text", EQUALITY,
                                 to_enum_label(domain.ANALYSIS_TYPES, "ANALYSIS_TYPE_")),
    "prompt_variant_id": FilterField("prompt_variant_id", EQUALITY, to_uuid),
    "create_time": _CREATED,
}

_CONFIGURATION_NAME = "uq_agent_configurations_organization_id_agent_type_name"
_LIVE_EXPERIMENT = "uq_experiments_organization_id_agent_type_live"
_ASSIGNMENT_CLIENT = "fk_experiment_assignments_client_id"
_ASSIGNMENT_VARIANT = "fk_experiment_assignments_variant"
_ANALYSIS_VARIANT = "fk_dialogue_analysis_prompt_variant_id"

# The advisory lock of one (organization, agent type) for moving its default or active row.
_LOCK = ("SELECT pg_advisory_xact_lock(hashtextextended("
         "'agents.' || $1 || '.' || (SELECT app.current_org())::text || '.' || $2, 0))")
LIVE = "(status = 'ACTIVE' OR (status = 'PAUSED' AND start_date IS NOT NULL))"


def _json(text: str | None):
    return json.loads(text) if text is not None else None


@contextmanager
def _translated(unique: dict | None = None, foreign: dict | None = None) -> Iterator[None]:
    """Constraint violations named here, as the domain's errors (others pass to libs/status)."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if unique and exc.constraint_name in unique:
            raise unique[exc.constraint_name]() from None
        raise
    except asyncpg.ForeignKeyViolationError as exc:
        if foreign and exc.constraint_name in foreign:
            raise foreign[exc.constraint_name]() from None
        raise


async def lock_agent_type(conn: asyncpg.Connection, purpose: str, agent_type: str) -> None:
    await conn.execute(_LOCK, purpose, agent_type)


async def _list(conn: asyncpg.Connection, table: str, columns: str, filters: dict, filter_text: str,
                page: PageRequest) -> list[asyncpg.Record]:
    """Newest first, keyset on (created_at, id), filtered."""
    where, args = compile_filter(filter_text, filters, first_param=1)
    conditions = [IN_ORG, where] if where else [IN_ORG]
    if page.after is not None:
        conditions.append(keyset_after(("created_at", "id"), True, len(args) + 1))
        args = [*args, *page.after]
    args.append(page.limit)
    return await conn.fetch(f"SELECT {columns} FROM {table} WHERE {' AND '.join(conditions)} "
                            f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}", *args)


def check_filter(filter_text: str, filters: dict) -> None:
    """Compile once before the transaction, so a bad filter costs no round trip."""
    compile_filter(filter_text, filters, first_param=1)


# --- agent configurations ------------------------------------------------------------------------

def _configuration(row: asyncpg.Record) -> AgentConfiguration:
    id_, agent_type, name, prompt, settings, active, created, updated = row
    return AgentConfiguration(id_, agent_type, name, prompt, _json(settings), active, created, updated,
                              etag_of(updated))


_GET_CONFIGURATION = f"SELECT {CONFIGURATION_COLUMNS} FROM agent_configurations WHERE {IN_ORG} AND id = $1"
_NAME_TAKEN = {_CONFIGURATION_NAME: domain.configuration_name_taken}


async def insert_configuration(conn: asyncpg.Connection, values: dict) -> AgentConfiguration:
    sql, args = insert_sql("agent_configurations", values, CONFIGURATION_CASTS, returning=CONFIGURATION_COLUMNS)
    with _translated(_NAME_TAKEN):
        return _configuration(await conn.fetchrow(sql, *args))


async def get_configuration(conn: asyncpg.Connection, row_id: UUID, *,
                            for_update: bool = False) -> AgentConfiguration | None:
    row = await conn.fetchrow(_GET_CONFIGURATION + (" FOR UPDATE" if for_update else ""), row_id)
    return _configuration(row) if row else None


async def update_configuration(conn: asyncpg.Connection, row_id: UUID, changes: dict) -> AgentConfiguration | None:
    sql, args = update_sql("agent_configurations", changes, CONFIGURATION_CASTS, returning=CONFIGURATION_COLUMNS)
    with _translated(_NAME_TAKEN):
        row = await conn.fetchrow(sql, row_id, *args)
    return _configuration(row) if row else None


async def deactivate_configurations(conn: asyncpg.Connection, agent_type: str, keep: UUID | None) -> None:
    """The agent type's active configuration, other than `keep`, made inactive."""
    await conn.execute(f"UPDATE agent_configurations SET is_active = false WHERE {IN_ORG} AND agent_type = "
                       "$1::agent_type AND is_active AND id IS DISTINCT FROM $2", agent_type, keep)


async def delete_configuration(conn: asyncpg.Connection, row_id: UUID) -> UUID | None:
    return await conn.fetchval(f"DELETE FROM agent_configurations WHERE {IN_ORG} AND id = $1 RETURNING id", row_id)


async def list_configurations(conn: asyncpg.Connection, filter_text: str,
                              page: PageRequest) -> list[AgentConfiguration]:
    rows = await _list(conn, "agent_configurations", CONFIGURATION_COLUMNS, CONFIGURATION_FILTERS, filter_text, page)
    return [_configuration(row) for row in rows]


# --- prompt variants -----------------------------------------------------------------------------

def _variant(row: asyncpg.Record) -> PromptVariant:
    id_, agent_type, name, description, prompt, active, default, created, updated = row
    return PromptVariant(id_, agent_type, name, description, prompt, active, default, created, updated,
                         etag_of(updated))


_GET_VARIANT = f"SELECT {VARIANT_COLUMNS} FROM prompt_variants WHERE {IN_ORG} AND id = $1"


async def insert_variant(conn: asyncpg.Connection, values: dict) -> PromptVariant:
    sql, args = insert_sql("prompt_variants", values, VARIANT_CASTS, returning=VARIANT_COLUMNS)
    return _variant(await conn.fetchrow(sql, *args))


async def get_variant(conn: asyncpg.Connection, row_id: UUID, *, for_update: bool = False) -> PromptVariant | None:
    row = await conn.fetchrow(_GET_VARIANT + (" FOR UPDATE" if for_update else ""), row_id)
    return _variant(row) if row else None


async def get_variants(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, PromptVariant]:
    rows = await conn.fetch(f"SELECT {VARIANT_COLUMNS} FROM prompt_variants WHERE {IN_ORG} AND id = ANY($1::uuid[])",
                            list(ids))
    return {variant.id: variant for variant in map(_variant, rows)}


async def update_variant(conn: asyncpg.Connection, row_id: UUID, changes: dict) -> PromptVariant | None:
    sql, args = update_sql("prompt_variants", changes, VARIANT_CASTS, returning=VARIANT_COLUMNS)
    row = await conn.fetchrow(sql, row_id, *args)
    return _variant(row) if row else None


async def clear_default(conn: asyncpg.Connection, agent_type: str, keep: UUID | None) -> None:
    """The agent type's default variant, other than `keep`, made an ordinary one."""
    await conn.execute(f"UPDATE prompt_variants SET is_default = false WHERE {IN_ORG} AND agent_type = "
                       "$1::agent_type AND is_default AND id IS DISTINCT FROM $2", agent_type, keep)


async def delete_variant(conn: asyncpg.Connection, row_id: UUID) -> UUID | None:
    return await conn.fetchval(f"DELETE FROM prompt_variants WHERE {IN_ORG} AND id = $1 RETURNING id", row_id)


@dataclass(frozen=True)
class VariantUse:
    kept: bool  # an experiment that is not cancelled includes it (its results need it)
    live: bool  # a started experiment that has not ended includes it


async def variant_use(conn: asyncpg.Connection, variant_id: UUID) -> VariantUse:
    row = await conn.fetchrow(
        f"""SELECT coalesce(bool_or(e.status <> 'CANCELLED'), false), coalesce(bool_or({LIVE}), false)
            FROM experiment_variants ev JOIN experiments e
              ON e.organization_id = ev.organization_id AND e.id = ev.experiment_id
            WHERE ev.organization_id = (SELECT app.current_org()) AND ev.prompt_variant_id = $1""", variant_id)
    return VariantUse(*row)


async def list_variants(conn: asyncpg.Connection, filter_text: str, page: PageRequest) -> list[PromptVariant]:
    rows = await _list(conn, "prompt_variants", VARIANT_COLUMNS, VARIANT_FILTERS, filter_text, page)
    return [_variant(row) for row in rows]


# --- experiments ---------------------------------------------------------------------------------

_EXPERIMENT_VARIANTS = (f"SELECT experiment_id, prompt_variant_id, weight, is_control FROM experiment_variants "
                        f"WHERE {IN_ORG} AND experiment_id = ANY($1::uuid[]) "
                        f"ORDER BY experiment_id, is_control DESC, prompt_variant_id")


def _experiment(row: asyncpg.Record, variants: Sequence[ExperimentVariant]) -> Experiment:
    (id_, agent_type, name, description, status, goal, start, end, version, history, created, updated) = row
    past = tuple(WeightsVersion.from_json(entry) for entry in _json(history) or [])
    return Experiment(id_, agent_type, name, description, status, tuple(variants), goal, start, end, version,
                      past, created, updated, etag_of(updated))


async def _with_variants(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[Experiment]:
    if not rows:
        return []
    by_experiment: dict[UUID, list[ExperimentVariant]] = {row[0]: [] for row in rows}
    for experiment_id, variant_id, weight, control in await conn.fetch(_EXPERIMENT_VARIANTS, list(by_experiment)):
        by_experiment[experiment_id].append(ExperimentVariant(variant_id, weight, control))
    return [_experiment(row, by_experiment[row[0]]) for row in rows]


async def insert_experiment(conn: asyncpg.Connection, values: dict) -> UUID:
    """A new experiment: PAUSED, with no start date until it first starts."""
    return await conn.fetchval(
        """INSERT INTO experiments (organization_id, status, start_date, agent_type, name, description, goal_status)
           VALUES ((SELECT app.current_org()), 'PAUSED', NULL, $1::agent_type, $2, $3, $4::client_status)
           RETURNING id""",
        values["agent_type"], values["name"], values["description"], values["goal_status"])


async def write_experiment_variants(conn: asyncpg.Connection, experiment_id: UUID,
                                    variants: Sequence[ExperimentVariant]) -> None:
    """The experiment's variants become exactly `variants` (ids, weights, control). The control
    flag is cleared first: the partial unique index allows one control at every moment."""
    await conn.execute(f"DELETE FROM experiment_variants WHERE {IN_ORG} AND experiment_id = $1 "
                       "AND NOT prompt_variant_id = ANY($2::uuid[])",
                       experiment_id, [v.prompt_variant_id for v in variants])
    await conn.execute(f"UPDATE experiment_variants SET is_control = false WHERE {IN_ORG} AND experiment_id = $1 "
                       "AND is_control", experiment_id)
    await conn.executemany(
        """INSERT INTO experiment_variants (organization_id, experiment_id, prompt_variant_id, weight, is_control)
           VALUES ((SELECT app.current_org()), $1, $2, $3, $4)
           ON CONFLICT (organization_id, experiment_id, prompt_variant_id)
           DO UPDATE SET weight = excluded.weight, is_control = excluded.is_control""",
        [(experiment_id, v.prompt_variant_id, v.weight, v.control) for v in variants])


async def get_experiment(conn: asyncpg.Connection, row_id: UUID, *, for_update: bool = False) -> Experiment | None:
    row = await conn.fetchrow(f"SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE {IN_ORG} AND id = $1"
                              + (" FOR UPDATE" if for_update else ""), row_id)
    return (await _with_variants(conn, [row]))[0] if row else None


async def update_experiment(conn: asyncpg.Connection, row_id: UUID, changes: dict) -> None:
    """The masked columns set; with no column to change, the row is still touched (its
    updated_at, so its etag, moves with a change of its variants)."""
    if not changes:
        await conn.execute(f"UPDATE experiments SET updated_at = now() WHERE {IN_ORG} AND id = $1", row_id)
        return
    sql, args = update_sql("experiments", changes, EXPERIMENT_CASTS, returning="id")
    await conn.execute(sql, row_id, *args)


async def set_experiment_status(conn: asyncpg.Connection, row_id: UUID, status: str) -> None:
    """ACTIVE sets the start date on the first start; COMPLETED and CANCELLED the end date.
    A start beside a live experiment of the same agent type is refused by the index."""
    with _translated({_LIVE_EXPERIMENT: domain.experiment_already_running}):
        await conn.execute(
            f"""UPDATE experiments SET status = $2::experiment_status,
                   start_date = CASE WHEN $2 = 'ACTIVE' THEN coalesce(start_date, now()) ELSE start_date END,
                   end_date = CASE WHEN $2 IN ('COMPLETED', 'CANCELLED') THEN now() ELSE end_date END
                WHERE {IN_ORG} AND id = $1""", row_id, status)


async def list_experiments(conn: asyncpg.Connection, filter_text: str, page: PageRequest) -> list[Experiment]:
    rows = await _list(conn, "experiments", EXPERIMENT_COLUMNS, EXPERIMENT_FILTERS, filter_text, page)
    return await _with_variants(conn, rows)


# --- resolving prompts ---------------------------------------------------------------------------

def _assignment(row: asyncpg.Record | None) -> Assignment | None:
    if row is None:
        return None
    experiment_id, client_id, variant_id, version, created, mirrored = row
    return Assignment(experiment_id, client_id, variant_id, version, created, mirrored is not None)


# The organization's revision and (when an experiment is named) the client's assignment, in
# one statement: the cached plan's check and the assignment lookup cost one round trip.
_REVISION_AND_ASSIGNMENT = f"""
    SELECT coalesce((SELECT revision FROM agent_revisions WHERE {IN_ORG}), 0),
           a.experiment_id, a.client_id, a.prompt_variant_id, a.weights_version, a.created_at, a.mirrored_at
    FROM (SELECT 1) one
    LEFT JOIN experiment_assignments a
      ON a.organization_id = (SELECT app.current_org()) AND a.experiment_id = $1 AND a.client_id = $2"""
_GET_ASSIGNMENT = (f"SELECT {ASSIGNMENT_COLUMNS} FROM experiment_assignments "
                   f"WHERE {IN_ORG} AND experiment_id = $1 AND client_id = $2")
_INSERT_ASSIGNMENT = f"""
    INSERT INTO experiment_assignments (organization_id, experiment_id, client_id, prompt_variant_id, weights_version)
    VALUES ((SELECT app.current_org()), $1, $2, $3, $4)
    ON CONFLICT (organization_id, experiment_id, client_id) DO NOTHING
    RETURNING {ASSIGNMENT_COLUMNS}"""
_LIVE_PLAN = """
    SELECT e.id, e.status::text, e.weights_version, ev.prompt_variant_id, ev.weight, pv.prompt
    FROM experiments e
    JOIN experiment_variants ev ON ev.organization_id = e.organization_id AND ev.experiment_id = e.id
    JOIN prompt_variants pv ON pv.organization_id = ev.organization_id AND pv.id = ev.prompt_variant_id
    WHERE e.organization_id = (SELECT app.current_org()) AND e.agent_type = $1::agent_type
      AND (e.status = 'ACTIVE' OR (e.status = 'PAUSED' AND e.start_date IS NOT NULL))
    ORDER BY ev.prompt_variant_id"""
_DEFAULTS_PLAN = f"""
    SELECT 'variant', id, prompt, NULL FROM prompt_variants
        WHERE {IN_ORG} AND agent_type = $1::agent_type AND is_default AND is_active
    UNION ALL
    SELECT 'configuration', id, prompt, settings::text FROM agent_configurations
        WHERE {IN_ORG} AND agent_type = $1::agent_type AND is_active"""


async def revision_and_assignment(conn: ReadConnection, experiment_id: UUID | None,
                                  client_id: UUID) -> tuple[int, Assignment | None]:
    row = await conn.fetchrow(_REVISION_AND_ASSIGNMENT, experiment_id, client_id)
    return row[0], _assignment(row[1:]) if row[1] is not None else None


async def get_assignment(conn: asyncpg.Connection, experiment_id: UUID, client_id: UUID) -> Assignment | None:
    return _assignment(await conn.fetchrow(_GET_ASSIGNMENT, experiment_id, client_id))


async def assign(conn: asyncpg.Connection, experiment_id: UUID, client_id: UUID, variant_id: UUID,
                 weights_version: int) -> tuple[Assignment, bool]:
    """(the client's assignment, whether this call made it). Racing first assignments: one
    insert wins, the others wait for it on the unique key and read it."""
    with _translated(foreign={_ASSIGNMENT_CLIENT: domain.client_not_found,
                              _ASSIGNMENT_VARIANT: domain.experiment_changed}):
        row = await conn.fetchrow(_INSERT_ASSIGNMENT, experiment_id, client_id, variant_id, weights_version)
    if row is not None:
        return _assignment(row), True
    return _assignment(await conn.fetchrow(_GET_ASSIGNMENT, experiment_id, client_id)), False


async def mark_mirrored(conn: asyncpg.Connection, experiment_id: UUID, client_id: UUID) -> None:
    await conn.execute(f"UPDATE experiment_assignments SET mirrored_at = now() WHERE {IN_ORG} "
                       "AND experiment_id = $1 AND client_id = $2 AND mirrored_at IS NULL", experiment_id, client_id)


async def load_plan(conn: asyncpg.Connection, agent_type: str) -> Plan:
    rows = await conn.fetch(_LIVE_PLAN, agent_type)
    experiment = None
    if rows:
        experiment_id, status, version = rows[0][:3]
        experiment = LiveExperiment(experiment_id, status, version,
                                    tuple(PlanVariant(r[3], r[4], r[5]) for r in rows))
    default, configuration = None, None
    for kind, row_id, prompt, settings in await conn.fetch(_DEFAULTS_PLAN, agent_type):
        if kind == "variant":
            default = (row_id, prompt)
        else:
            configuration = (row_id, prompt, _json(settings))
    return Plan(experiment, default, configuration)


# --- results and cohorts -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AssignedClient:
    client_id: str  # text: it goes to crm as such
    prompt_variant_id: UUID
    weights_version: int
    assign_time: datetime


async def assigned_clients(conn: asyncpg.Connection, experiment_id: UUID, start: datetime | None = None,
                           end: datetime | None = None) -> list[AssignedClient]:
    """The experiment's assignments (index-only on its covering index), optionally those made
    in [start, end)."""
    conditions, args = [IN_ORG, "experiment_id = $1"], [experiment_id]
    if start is not None:
        args.append(start)
        conditions.append(f"created_at >= ${len(args)}")
    if end is not None:
        args.append(end)
        conditions.append(f"created_at < ${len(args)}")
    rows = await conn.fetch(f"SELECT client_id::text, prompt_variant_id, weights_version, created_at "
                            f"FROM experiment_assignments WHERE {' AND '.join(conditions)}", *args)
    return [AssignedClient(*row) for row in rows]


async def variant_cohort(conn: asyncpg.Connection, variant_id: UUID, start: datetime | None,
                         end: datetime | None) -> list[AssignedClient]:
    """The clients assigned to the variant in any experiment, each at its first such
    assignment, optionally made in [start, end)."""
    conditions, args = [IN_ORG, "prompt_variant_id = $1"], [variant_id]
    if start is not None:
        args.append(start)
        conditions.append(f"created_at >= ${len(args)}")
    if end is not None:
        args.append(end)
        conditions.append(f"created_at < ${len(args)}")
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (client_id) client_id::text, prompt_variant_id, weights_version, created_at "
        f"FROM experiment_assignments WHERE {' AND '.join(conditions)} ORDER BY client_id, created_at", *args)
    return [AssignedClient(*row) for row in rows]


async def variant_names(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, str]:
    rows = await conn.fetch(f"SELECT id, name FROM prompt_variants WHERE {IN_ORG} AND id = ANY($1::uuid[])", list(ids))
    return dict(rows)


# --- dialogue analysis ---------------------------------------------------------------------------

def _analysis(row: asyncpg.Record) -> DialogueAnalysis:
    id_, analysis_type, variant_id, data, recommendations, created = row
    return DialogueAnalysis(id_, analysis_type, variant_id, _json(data) or {}, _json(recommendations), created)


async def insert_analysis(conn: asyncpg.Connection, values: dict) -> DialogueAnalysis:
    sql, args = insert_sql("dialogue_analysis", values, ANALYSIS_CASTS, returning=ANALYSIS_COLUMNS)
    with _translated(foreign={_ANALYSIS_VARIANT: lambda: domain.unknown_reference(
            "dialogue_analysis.prompt_variant_id", "prompt variant")}):
        return _analysis(await conn.fetchrow(sql, *args))


async def get_analysis(conn: asyncpg.Connection, row_id: UUID) -> DialogueAnalysis | None:
    row = await conn.fetchrow(f"SELECT {ANALYSIS_COLUMNS} FROM dialogue_analysis WHERE {IN_ORG} AND id = $1", row_id)
    return _analysis(row) if row else None


async def list_analyses(conn: asyncpg.Connection, filter_text: str, page: PageRequest) -> list[DialogueAnalysis]:
    rows = await _list(conn, "dialogue_analysis", ANALYSIS_COLUMNS, ANALYSIS_FILTERS, filter_text, page)
    return [_analysis(row) for row in rows]
