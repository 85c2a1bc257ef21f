"""agents' use cases. Each validates its request with the domain's rules, then runs in one
TenantDatabase transaction under the caller's organization; calls to crm go through
libs/clients.py with the caller's token and deadline, outside any transaction."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from uuid import UUID

from google.protobuf import field_mask_pb2, timestamp_pb2

from libs import clients as service_clients
from libs.clients import ServiceClients
from libs.errors import ServiceError
from libs.idempotency import claim_request_id, create_once, record_request_id
from libs.persistence import KeysetPager, Page, check_etag, found
from libs.tenancy.context import Principal
from libs.tenancy.database import TenantDatabase
from services.agents import domain
from services.agents import repository as repo
from services.agents.cache import PlanCache
from services.agents.domain import (
    AgentConfiguration,
    DialogueAnalysis,
    Experiment,
    ExperimentResults,
    PromptVariant,
    ResolvedPrompt,
)
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.crm.v1 import enums_pb2 as crm_enums

log = logging.getLogger("soulkg.agents")

_PACKAGE = "soulkg.agents.v1"
CREATE_CONFIGURATION = f"{_PACKAGE}.AgentConfigurationService/CreateAgentConfiguration"
CREATE_VARIANT = f"{_PACKAGE}.PromptVariantService/CreatePromptVariant"
CREATE_EXPERIMENT = f"{_PACKAGE}.ExperimentService/CreateExperiment"
CREATE_ANALYSIS = f"{_PACKAGE}.DialogueAnalysisService/CreateDialogueAnalysis"
RUN_CONVERSION_ANALYSIS = f"{_PACKAGE}.DialogueAnalysisService/RunConversionAnalysis"
_TIME_ID = (datetime, UUID)  # the keyset of every list here: (created_at, id)

MIRROR_TIMEOUT_SECONDS = 2.0  # the prompt is answered even when crm is slow: the mirror is retried
# Client ids per ListClientStatusChanges call (crm takes up to 10,000). Smaller batches than
# that: most batches fit in one page of changes, so crm parses each id once, not once per page.
FUNNEL_BATCH = 5000
FUNNEL_PAGE = 1000
FUNNEL_CONCURRENCY = 4


def _page(pager: KeysetPager, principal: Principal, resource: str, request: domain.ListRequest):
    return pager.request(principal.organization_id, query=(resource, " ".join(request.filter.split())),
                         page_token=request.page_token, requested_size=request.page_size, key_types=_TIME_ID)


def _by_time(row) -> tuple:
    return row.create_time, row.id


class ConfigurationsService:
    def __init__(self, db: TenantDatabase, pager: KeysetPager) -> None:
        self.db, self.pager = db, pager

    async def create(self, request: domain.Create) -> AgentConfiguration:
        new = domain.validate_configuration_create(request)
        async with self.db.transaction() as conn:
            async def insert() -> AgentConfiguration:
                if new.values["is_active"]:
                    await repo.lock_agent_type(conn, "active", new.values["agent_type"])
                    await repo.deactivate_configurations(conn, new.values["agent_type"], None)
                return await repo.insert_configuration(conn, new.values)
            return await create_once(conn, CREATE_CONFIGURATION, new.request_id, create=insert,
                                     existing=partial(repo.get_configuration, conn), resource="agent_configuration")

    async def get(self, row_id: UUID) -> AgentConfiguration:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_configuration(conn, row_id), "agent_configuration")

    async def list(self, principal: Principal, request: domain.ListRequest) -> Page[AgentConfiguration]:
        repo.check_filter(request.filter, repo.CONFIGURATION_FILTERS)
        page = _page(self.pager, principal, "agent_configurations", request)
        async with self.db.transaction(readonly=True) as conn:
            rows = await repo.list_configurations(conn, request.filter, page)
        return self.pager.page(page, rows, key=_by_time)

    async def update(self, request: domain.Update) -> AgentConfiguration:
        """Activating one deactivates the agent type's other active configuration, under the
        agent type's lock, so racing activations leave exactly one active."""
        update = domain.validate_configuration_update(request)
        async with self.db.transaction() as conn:
            current = found(await repo.get_configuration(conn, update.id), "agent_configuration")
            if update.changes.get("is_active"):
                await repo.lock_agent_type(conn, "active", current.agent_type)
                await repo.deactivate_configurations(conn, current.agent_type, current.id)
            current = found(await repo.get_configuration(conn, update.id, for_update=True), "agent_configuration")
            check_etag(update.etag, current.etag)
            return found(await repo.update_configuration(conn, update.id, update.changes), "agent_configuration")

    async def delete(self, row_id: UUID, etag: str) -> None:
        async with self.db.transaction() as conn:
            current = found(await repo.get_configuration(conn, row_id, for_update=True), "agent_configuration")
            check_etag(etag, current.etag)
            await repo.delete_configuration(conn, row_id)


class VariantsService:
    def __init__(self, db: TenantDatabase, pager: KeysetPager) -> None:
        self.db, self.pager = db, pager

    async def create(self, request: domain.Create) -> PromptVariant:
        new = domain.validate_variant_create(request)
        async with self.db.transaction() as conn:
            async def insert() -> PromptVariant:
                if new.values["is_default"]:
                    await repo.lock_agent_type(conn, "default", new.values["agent_type"])
                    await repo.clear_default(conn, new.values["agent_type"], None)
                return await repo.insert_variant(conn, new.values)
            return await create_once(conn, CREATE_VARIANT, new.request_id, create=insert,
                                     existing=partial(repo.get_variant, conn), resource="prompt_variant")

    async def get(self, row_id: UUID) -> PromptVariant:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_variant(conn, row_id), "prompt_variant")

    async def list(self, principal: Principal, request: domain.ListRequest) -> Page[PromptVariant]:
        repo.check_filter(request.filter, repo.VARIANT_FILTERS)
        page = _page(self.pager, principal, "prompt_variants", request)
        async with self.db.transaction(readonly=True) as conn:
            rows = await repo.list_variants(conn, request.filter, page)
        return self.pager.page(page, rows, key=_by_time)

    async def update(self, request: domain.Update) -> PromptVariant:
        """Making one the default makes the agent type's other default ordinary, under the
        agent type's lock: racing requests queue up and exactly one default remains."""
        update = domain.validate_variant_update(request)
        async with self.db.transaction() as conn:
            current = found(await repo.get_variant(conn, update.id), "prompt_variant")
            if update.changes.get("is_default"):
                await repo.lock_agent_type(conn, "default", current.agent_type)
                await repo.clear_default(conn, current.agent_type, current.id)
            current = found(await repo.get_variant(conn, update.id, for_update=True), "prompt_variant")
            check_etag(update.etag, current.etag)
            if {"prompt", "is_active"} & update.changes.keys():
                domain.check_variant_update(update, current, (await repo.variant_use(conn, update.id)).live)
            return found(await repo.update_variant(conn, update.id, update.changes), "prompt_variant")

    async def delete(self, row_id: UUID, etag: str) -> None:
        async with self.db.transaction() as conn:
            current = found(await repo.get_variant(conn, row_id, for_update=True), "prompt_variant")
            check_etag(etag, current.etag)
            if (await repo.variant_use(conn, row_id)).kept:
                raise domain.variant_in_use("an experiment that is not cancelled includes this variant (its "
                                            "results need it): deactivate the variant instead")
            await repo.delete_variant(conn, row_id)


class CrmFunnel:
    """Status changes of many clients, read through crm's ListClientStatusChanges: batches of
    crm's maximum of ids, each paged, a few batches at a time."""

    def __init__(self, clients: ServiceClients) -> None:
        self.clients = clients

    async def changes(self, client_ids: Sequence[str], statuses: Sequence[str],
                      since: datetime | None) -> list[tuple[str, str, datetime]]:
        """(client id, new status label, time) of every change of the clients into `statuses`
        (all when empty) at or after `since`."""
        stub = self.clients.stub("crm", crm_pb2_grpc.ClientServiceStub)
        status_values = [crm_enums.ClientStatus.Value(f"CLIENT_STATUS_{s}") for s in statuses]
        since_pb = None
        if since is not None:
            since_pb = timestamp_pb2.Timestamp()
            since_pb.FromDatetime(since)
        limit = asyncio.Semaphore(FUNNEL_CONCURRENCY)
        names = {value: name.removeprefix("CLIENT_STATUS_") for name, value in crm_enums.ClientStatus.items()}

        async def batch(ids: Sequence[str]) -> list[tuple[str, str, datetime]]:
            found_changes, token = [], ""
            async with limit:
                while True:
                    reply = await service_clients.call("crm", stub.ListClientStatusChanges(
                        crm_pb2.ListClientStatusChangesRequest(client_ids=ids, statuses=status_values, since=since_pb,
                                                               page_size=FUNNEL_PAGE, page_token=token)))
                    for change in reply.changes:
                        time = change.create_time
                        found_changes.append((change.client_id, names[change.new_status],
                                              datetime.fromtimestamp(time.seconds + time.nanos / 1e9, UTC)))
                    token = reply.next_page_token
                    if not token:
                        return found_changes

        batches = [client_ids[i:i + FUNNEL_BATCH] for i in range(0, len(client_ids), FUNNEL_BATCH)]
        results = await asyncio.gather(*(batch(ids) for ids in batches))
        return [change for result in results for change in result]


class ExperimentsService:
    def __init__(self, db: TenantDatabase, pager: KeysetPager, funnel: CrmFunnel) -> None:
        self.db, self.pager, self.funnel = db, pager, funnel

    async def create(self, request: domain.Create) -> Experiment:
        new = domain.validate_experiment_create(request)
        async with self.db.transaction() as conn:
            existing = await claim_request_id(conn, CREATE_EXPERIMENT, new.request_id)
            if existing is not None:
                return found(await repo.get_experiment(conn, existing), "experiment")
            rows = await repo.get_variants(conn, [v.prompt_variant_id for v in new.variants])
            domain.check_variants_exist(new.variants, new.values["agent_type"], rows)
            experiment_id = await repo.insert_experiment(conn, new.values)
            await repo.write_experiment_variants(conn, experiment_id, new.variants)
            await record_request_id(conn, CREATE_EXPERIMENT, new.request_id, experiment_id)
            return found(await repo.get_experiment(conn, experiment_id), "experiment")

    async def get(self, row_id: UUID) -> Experiment:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_experiment(conn, row_id), "experiment")

    async def list(self, principal: Principal, request: domain.ListRequest) -> Page[Experiment]:
        repo.check_filter(request.filter, repo.EXPERIMENT_FILTERS)
        page = _page(self.pager, principal, "experiments", request)
        async with self.db.transaction(readonly=True) as conn:
            rows = await repo.list_experiments(conn, request.filter, page)
        return self.pager.page(page, rows, key=_by_time)

    async def update(self, request: domain.Update) -> Experiment:
        """A change of weights after the start opens a new weights version: the clients
        assigned so far keep their variant and are judged by the weights they came under."""
        update = domain.validate_experiment_update(request)
        async with self.db.transaction() as conn:
            current = found(await repo.get_experiment(conn, update.id, for_update=True), "experiment")
            check_etag(update.etag, current.etag)
            domain.check_experiment_update(update, current)
            changes = dict(update.changes)
            if update.variants is not None:
                rows = await repo.get_variants(conn, [v.prompt_variant_id for v in update.variants])
                domain.check_variants_exist(update.variants, current.agent_type, rows)
                if current.started and domain.weights_changed(current, update.variants):
                    changes["weights_version"] = current.weights_version + 1
                    changes["weights_history"] = json.dumps(domain.next_weights_history(current))
                await repo.write_experiment_variants(conn, update.id, update.variants)
            await repo.update_experiment(conn, update.id, changes)
            return found(await repo.get_experiment(conn, update.id), "experiment")

    async def change_status(self, row_id: UUID, action: str, etag: str = "") -> Experiment:
        async with self.db.transaction() as conn:
            current = found(await repo.get_experiment(conn, row_id, for_update=True), "experiment")
            check_etag(etag, current.etag)
            target = domain.transition(current, action)
            if target == "ACTIVE":  # a variant deactivated since the experiment was made cannot be served
                domain.check_startable(current, await repo.get_variants(
                    conn, [v.prompt_variant_id for v in current.variants]))
            await repo.set_experiment_status(conn, row_id, target)
            return found(await repo.get_experiment(conn, row_id), "experiment")

    async def results(self, row_id: UUID) -> ExperimentResults:
        """The counts from agents' own tables in one read-only transaction; the conversions
        from crm's status history, through crm's API, after it."""
        async with self.db.transaction(readonly=True) as conn:
            experiment = found(await repo.get_experiment(conn, row_id), "experiment")
            assigned = await repo.assigned_clients(conn, row_id)
            names = await repo.variant_names(conn, [v.prompt_variant_id for v in experiment.variants])
        counts: dict[tuple[int, UUID], int] = {}
        assigned_at: dict[str, datetime] = {}
        variant_of: dict[str, UUID] = {}
        for client in assigned:
            key = (client.weights_version, client.prompt_variant_id)
            counts[key] = counts.get(key, 0) + 1
            assigned_at[client.client_id] = client.assign_time
            variant_of[client.client_id] = client.prompt_variant_id
        converted: dict[UUID, int] = {}
        if assigned:
            changes = await self.funnel.changes(list(assigned_at), domain.goal_stages(experiment.goal_status),
                                                min(assigned_at.values()))
            for client_id in domain.first_conversions(assigned_at, ((c, t) for c, _, t in changes)):
                converted[variant_of[client_id]] = converted.get(variant_of[client_id], 0) + 1
        return domain.compute_results(experiment, names, counts, converted, datetime.now(UTC))


class PromptsService:
    """ResolvePrompt: the cached plan checked against the organization's revision in the
    same statement that reads the client's assignment (services/agents/cache.py)."""

    def __init__(self, db: TenantDatabase, cache: PlanCache, clients: ServiceClients) -> None:
        self.db, self.cache, self.clients = db, cache, clients

    async def resolve(self, principal: Principal, request: domain.ResolveRequest) -> ResolvedPrompt:
        client_id, agent_type = domain.validate_resolve(request)
        organization = principal.organization_id
        cached = self.cache.get(organization, agent_type)
        cached_experiment = cached.plan.experiment.id if cached and cached.plan.experiment else None
        if cached is not None:
            # The common call: the cached plan is current and the client already has its
            # variant (or there is no experiment), so nothing is written: one statement, one
            # round trip (single_read). Anything else takes the transaction below.
            async with self.db.single_read() as conn:
                revision, assigned = await repo.revision_and_assignment(conn, cached_experiment, client_id)
            if cached.revision == revision and domain.variant_to_assign(cached.plan, client_id, assigned) is None:
                self.cache.count(True)
                return await self._resolved(cached.plan, assigned, newly_assigned=False)
        newly_assigned = False
        async with self.db.transaction() as conn:
            revision, assigned = await repo.revision_and_assignment(conn, cached_experiment, client_id)
            fresh = cached is not None and cached.revision == revision
            self.cache.count(fresh)
            if fresh:
                plan = cached.plan
            else:
                plan = await repo.load_plan(conn, agent_type)
                self.cache.put(organization, agent_type, revision, plan)
                live = plan.experiment.id if plan.experiment else None
                if live != cached_experiment:
                    assigned = await repo.get_assignment(conn, live, client_id) if live else None
            variant = domain.variant_to_assign(plan, client_id, assigned)
            if variant is not None:
                assigned, newly_assigned = await repo.assign(conn, plan.experiment.id, client_id, variant,
                                                             plan.experiment.weights_version)
        return await self._resolved(plan, assigned, newly_assigned)

    async def _resolved(self, plan: domain.Plan, assigned: domain.Assignment | None,
                        newly_assigned: bool) -> ResolvedPrompt:
        resolved = domain.resolve(plan, assigned, newly_assigned)
        if assigned is not None and not assigned.mirrored and resolved.source == "EXPERIMENT_VARIANT":
            await self._mirror(assigned)
        return resolved

    async def _mirror(self, assigned: domain.Assignment) -> None:
        """The client's prompt_variant_id in crm, through crm's API. A failure is logged and
        left for the client's next resolve (the assignment stays unmirrored until then):
        the agent gets its prompt either way."""
        crm = self.clients.stub("crm", crm_pb2_grpc.ClientServiceStub)
        try:
            await service_clients.call("crm", crm.UpdateClient(crm_pb2.UpdateClientRequest(
                client=crm_pb2.Client(id=str(assigned.client_id), prompt_variant_id=str(assigned.prompt_variant_id)),
                update_mask=field_mask_pb2.FieldMask(paths=["prompt_variant_id"])), timeout=MIRROR_TIMEOUT_SECONDS))
        except ServiceError as exc:
            log.warning("could not mirror an assignment into crm (retried on the next resolve): %s %s",
                        exc.code, exc.reason)
            return
        async with self.db.transaction() as conn:
            await repo.mark_mirrored(conn, assigned.experiment_id, assigned.client_id)


class AnalysesService:
    def __init__(self, db: TenantDatabase, pager: KeysetPager, funnel: CrmFunnel) -> None:
        self.db, self.pager, self.funnel = db, pager, funnel

    async def create(self, request: domain.Create) -> DialogueAnalysis:
        new = domain.validate_analysis_create(request)
        async with self.db.transaction() as conn:
            return await create_once(conn, CREATE_ANALYSIS, new.request_id,
                                     create=partial(repo.insert_analysis, conn, new.values),
                                     existing=partial(repo.get_analysis, conn), resource="dialogue_analysis")

    async def get(self, row_id: UUID) -> DialogueAnalysis:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_analysis(conn, row_id), "dialogue_analysis")

    async def list(self, principal: Principal, request: domain.ListRequest) -> Page[DialogueAnalysis]:
        repo.check_filter(request.filter, repo.ANALYSIS_FILTERS)
        page = _page(self.pager, principal, "dialogue_analysis", request)
        async with self.db.transaction(readonly=True) as conn:
            rows = await repo.list_analyses(conn, request.filter, page)
        return self.pager.page(page, rows, key=_by_time)

    async def run_conversion_analysis(self, request: domain.ConversionAnalysisRequest) -> DialogueAnalysis:
        """The cohort from agents' tables, their status history from crm, the funnel computed
        here and stored as a CONVERSION_METRICS record."""
        analysis = domain.validate_conversion_analysis(request)
        end = analysis.end_time or datetime.now(UTC)
        async with self.db.transaction(readonly=True) as conn:
            if analysis.experiment_id is not None:
                found(await repo.get_experiment(conn, analysis.experiment_id), "experiment")
                cohort = await repo.assigned_clients(conn, analysis.experiment_id, analysis.start_time, end)
                subject = {"experiment_id": str(analysis.experiment_id)}
            else:
                found(await repo.get_variant(conn, analysis.prompt_variant_id), "prompt_variant")
                cohort = await repo.variant_cohort(conn, analysis.prompt_variant_id, analysis.start_time, end)
                subject = {"prompt_variant_id": str(analysis.prompt_variant_id)}
        changes = await self.funnel.changes([c.client_id for c in cohort], (), None) if cohort else []
        data = domain.conversion_metrics(subject, [(c.client_id, c.prompt_variant_id) for c in cohort], changes,
                                         analysis.start_time, end, by_variant=analysis.experiment_id is not None)
        values = {"analysis_type": "CONVERSION_METRICS", "prompt_variant_id": analysis.prompt_variant_id,
                  "data": domain.json_value_text(data, "data", domain.MAX_DATA_BYTES * 4)}
        async with self.db.transaction() as conn:
            existing = await claim_request_id(conn, RUN_CONVERSION_ANALYSIS, analysis.request_id)
            if existing is not None:
                return found(await repo.get_analysis(conn, existing), "dialogue_analysis")
            record = await repo.insert_analysis(conn, values)
            await record_request_id(conn, RUN_CONVERSION_ANALYSIS, analysis.request_id, record.id)
            return record
