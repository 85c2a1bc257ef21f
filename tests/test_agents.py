"""agents over real gRPC against real PostgreSQL, with the real crm beside it (the `stack`):
configurations, variants and their one-per-agent-type rules under races, the experiment
lifecycle, sticky assignment across server instances, ResolvePrompt's sources, cache and
crm mirror, results against independently computed statistics, dialogue analyses,
policies, and isolation of every method against a second organization."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2, json_format, struct_pb2

from libs.tenancy.tokens import load_signer
from soulkg.agents.v1 import agents_pb2 as pb
from soulkg.agents.v1 import agents_pb2_grpc as rpc
from soulkg.agents.v1 import enums_pb2 as enums
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.crm.v1 import enums_pb2 as crm_enums
from soulkg.identity.v1 import enums_pb2 as identity_enums
from tests.helpers import Caller, error_info, field_violations, new_phone, rpc_error
from tests.identity_helpers import Account, add_user, sign_up

COMMUNICATION = enums.AGENT_TYPE_COMMUNICATION
QUALIFICATION = enums.AGENT_TYPE_QUALIFICATION
S = crm_enums


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


class Agents:
    """Every agents stub (and crm's) acting as one caller."""

    def __init__(self, channel, crm_channel, account: Account | None = None, token: str | None = None) -> None:
        metadata = [("authorization", f"Bearer {token or account.access_token}")]
        self.account = account
        self.configs = Caller(rpc.AgentConfigurationServiceStub(channel), metadata)
        self.variants = Caller(rpc.PromptVariantServiceStub(channel), metadata)
        self.experiments = Caller(rpc.ExperimentServiceStub(channel), metadata)
        self.prompts = Caller(rpc.PromptServiceStub(channel), metadata)
        self.analyses = Caller(rpc.DialogueAnalysisServiceStub(channel), metadata)
        self.crm = Caller(crm_pb2_grpc.ClientServiceStub(crm_channel), metadata)

    async def config(self, name: str = "Default", agent_type=COMMUNICATION, **fields) -> pb.AgentConfiguration:
        fields.setdefault("prompt", f"{name}: be helpful.")
        return await self.configs.CreateAgentConfiguration(pb.CreateAgentConfigurationRequest(
            agent_configuration=pb.AgentConfiguration(agent_type=agent_type, name=name, **fields)))

    async def variant(self, name: str = "V", agent_type=COMMUNICATION, **fields) -> pb.PromptVariant:
        fields.setdefault("prompt", f"Prompt of {name}")
        return await self.variants.CreatePromptVariant(pb.CreatePromptVariantRequest(
            prompt_variant=pb.PromptVariant(agent_type=agent_type, name=name, **fields)))

    async def experiment(self, variants, agent_type=COMMUNICATION, name: str = "E", **fields) -> pb.Experiment:
        """`variants`: [(variant, weight)] or [(variant, weight, control)]."""
        return await self.experiments.CreateExperiment(pb.CreateExperimentRequest(experiment=pb.Experiment(
            agent_type=agent_type, name=name, variants=[
                pb.ExperimentVariant(prompt_variant_id=v[0].id, weight=v[1], control=v[2] if len(v) > 2 else False)
                for v in variants], **fields)))

    async def running(self, *weights: int, agent_type=COMMUNICATION, **fields):
        """A started experiment over new variants with these weights: (experiment, variants)."""
        variants = [await self.variant(f"V{i}-{uuid.uuid4().hex[:4]}", agent_type) for i in range(len(weights))]
        experiment = await self.experiment(list(zip(variants, weights, strict=True)), agent_type, **fields)
        return await self.start(experiment.id), variants

    async def start(self, experiment_id: str) -> pb.Experiment:
        return await self.experiments.StartExperiment(pb.StartExperimentRequest(id=experiment_id))

    async def client(self, **fields) -> crm_pb2.Client:
        fields.setdefault("phone", new_phone())
        return await self.crm.CreateClient(crm_pb2.CreateClientRequest(client=crm_pb2.Client(**fields)))

    async def resolve(self, client_id: str, agent_type=COMMUNICATION) -> pb.ResolvePromptResponse:
        return await self.prompts.ResolvePrompt(pb.ResolvePromptRequest(client_id=client_id, agent_type=agent_type))

    async def move(self, client_id: str, *statuses) -> None:
        for status in statuses:
            await self.crm.ChangeClientStatus(crm_pb2.ChangeClientStatusRequest(id=client_id, status=status))

    async def results(self, experiment_id: str) -> pb.ExperimentResults:
        return await self.experiments.GetExperimentResults(pb.GetExperimentResultsRequest(id=experiment_id))


def service_token(keys_dir, account: Account, name: str = "agents") -> str:
    token, _ = load_signer(keys_dir).issue(organization_id=uuid.UUID(account.organization.id),
                                           subject=f"service:{name}", kind="service")
    return token


@pytest.fixture
async def org(identity_channel, agents_channel, crm_channel) -> Agents:
    return Agents(agents_channel, crm_channel, await sign_up(identity_channel, "agents-a"))


@pytest.fixture
async def other(identity_channel, agents_channel, crm_channel) -> Agents:
    return Agents(agents_channel, crm_channel, await sign_up(identity_channel, "agents-b"))


def admin_sql(database, query: str, *params):
    """The suite's superuser (tests set up and inspect rows directly; services never do)."""
    with psycopg.connect(database.admin, autocommit=True) as conn:
        cursor = conn.execute(query, params or None)
        return cursor.fetchall() if cursor.description else None


async def code_and_reason(awaitable) -> tuple[grpc.StatusCode, str]:
    error = await rpc_error(awaitable)
    return error.code(), error_info(error).reason


# --- agent configurations ------------------------------------------------------------------------

async def test_configuration_create_get_list_update_delete(org):
    settings = struct_pb2.Struct()
    settings.update({"model": "any", "temperature": 0.4})
    created = await org.config("Greeter", settings=settings)
    assert created.is_active and created.etag and created.settings["temperature"] == 0.4
    assert await org.configs.GetAgentConfiguration(pb.GetAgentConfigurationRequest(id=created.id)) == created

    updated = await org.configs.UpdateAgentConfiguration(pb.UpdateAgentConfigurationRequest(
        agent_configuration=pb.AgentConfiguration(id=created.id, prompt="Shorter.", etag=created.etag),
        update_mask=mask("prompt")))
    assert updated.prompt == "Shorter." and updated.name == "Greeter" and updated.etag != created.etag
    assert await code_and_reason(org.configs.UpdateAgentConfiguration(pb.UpdateAgentConfigurationRequest(
        agent_configuration=pb.AgentConfiguration(id=created.id, name="X", etag=created.etag),
        update_mask=mask("name")))) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    assert (await code_and_reason(org.configs.UpdateAgentConfiguration(pb.UpdateAgentConfigurationRequest(
        agent_configuration=pb.AgentConfiguration(id=created.id), update_mask=mask()))))[0] == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert await code_and_reason(org.config("Greeter")) == (grpc.StatusCode.ALREADY_EXISTS, "CONFIGURATION_NAME_TAKEN")
    await org.config("Greeter", agent_type=QUALIFICATION)  # unique per agent type only

    listed = await org.configs.ListAgentConfigurations(pb.ListAgentConfigurationsRequest(
        filter="agent_type = COMMUNICATION AND is_active = true"))
    assert [c.id for c in listed.agent_configurations] == [created.id]
    assert (await code_and_reason(org.configs.ListAgentConfigurations(pb.ListAgentConfigurationsRequest(
        filter="agent = 1"))))[1] == "INVALID_FILTER"

    await org.configs.DeleteAgentConfiguration(pb.DeleteAgentConfigurationRequest(id=created.id))
    assert await code_and_reason(org.configs.GetAgentConfiguration(pb.GetAgentConfigurationRequest(
        id=created.id))) == (grpc.StatusCode.NOT_FOUND, "AGENT_CONFIGURATION_NOT_FOUND")


async def test_configuration_validation_reports_every_violation(org):
    error = await rpc_error(org.configs.CreateAgentConfiguration(pb.CreateAgentConfigurationRequest(
        agent_configuration=pb.AgentConfiguration(prompt="  "), request_id="nope")))
    assert set(field_violations(error)) == {"agent_configuration.agent_type", "agent_configuration.name",
                                            "agent_configuration.prompt", "request_id"}
    big = struct_pb2.Struct()
    big.update({"blob": "x" * 20_000})
    error = await rpc_error(org.config("Big", settings=big))
    assert set(field_violations(error)) == {"agent_configuration.settings"}


async def test_one_active_configuration_per_agent_type_even_when_activations_race(org, database):
    first = await org.config("First")
    second = await org.config("Second")  # active by default: the first is deactivated
    assert not (await org.configs.GetAgentConfiguration(pb.GetAgentConfigurationRequest(id=first.id))).is_active
    others = [await org.config(f"C{i}", is_active=False) for i in range(6)]
    await asyncio.gather(*(org.configs.UpdateAgentConfiguration(pb.UpdateAgentConfigurationRequest(
        agent_configuration=pb.AgentConfiguration(id=c.id, is_active=True), update_mask=mask("is_active")))
        for c in [first, second, *others]))
    active = await org.configs.ListAgentConfigurations(pb.ListAgentConfigurationsRequest(
        filter="agent_type = COMMUNICATION AND is_active = true"))
    assert len(active.agent_configurations) == 1


# --- prompt variants -----------------------------------------------------------------------------

async def test_racing_defaults_leave_exactly_one(org):
    variants = [await org.variant(f"D{i}") for i in range(8)]
    await asyncio.gather(*(org.variants.UpdatePromptVariant(pb.UpdatePromptVariantRequest(
        prompt_variant=pb.PromptVariant(id=v.id, is_default=True), update_mask=mask("is_default")))
        for v in variants))
    defaults = await org.variants.ListPromptVariants(pb.ListPromptVariantsRequest(
        filter="agent_type = COMMUNICATION AND is_default = true"))
    assert len(defaults.prompt_variants) == 1
    # Creating with is_default moves it too; another agent type keeps its own default.
    other_type = await org.variant("Q", QUALIFICATION, is_default=True)
    newest = await org.variant("Newest", is_default=True)
    defaults = await org.variants.ListPromptVariants(pb.ListPromptVariantsRequest(filter="is_default = true"))
    assert {v.id for v in defaults.prompt_variants} == {newest.id, other_type.id}
    racing = await asyncio.gather(*(org.variant(f"R{i}", is_default=True) for i in range(6)))
    defaults = await org.variants.ListPromptVariants(pb.ListPromptVariantsRequest(
        filter="agent_type = COMMUNICATION AND is_default = true"))
    assert len(defaults.prompt_variants) == 1 and defaults.prompt_variants[0].id in {v.id for v in racing}


async def test_a_variant_in_use_is_kept(org):
    experiment, (a, b) = await org.running(50, 50)
    for variant in (a, b):
        assert await code_and_reason(org.variants.DeletePromptVariant(pb.DeletePromptVariantRequest(
            id=variant.id))) == (grpc.StatusCode.FAILED_PRECONDITION, "VARIANT_IN_USE")
    for change, paths in ((pb.PromptVariant(id=a.id, prompt="changed"), ("prompt",)),
                          (pb.PromptVariant(id=a.id, is_active=False), ("is_active",))):
        assert await code_and_reason(org.variants.UpdatePromptVariant(pb.UpdatePromptVariantRequest(
            prompt_variant=change, update_mask=mask(*paths)))) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                                   "VARIANT_IN_USE")
    renamed = await org.variants.UpdatePromptVariant(pb.UpdatePromptVariantRequest(
        prompt_variant=pb.PromptVariant(id=a.id, name="Renamed"), update_mask=mask("name")))
    assert renamed.name == "Renamed"
    await org.experiments.CompleteExperiment(pb.CompleteExperimentRequest(id=experiment.id))
    # Ended: the prompt may change, but the variant stays for the completed experiment's results.
    await org.variants.UpdatePromptVariant(pb.UpdatePromptVariantRequest(
        prompt_variant=pb.PromptVariant(id=a.id, prompt="v2"), update_mask=mask("prompt")))
    assert (await code_and_reason(org.variants.DeletePromptVariant(pb.DeletePromptVariantRequest(
        id=a.id))))[1] == "VARIANT_IN_USE"
    # A variant only a cancelled experiment used may go.
    cancelled, (c, _) = await org.running(1, 1)
    await org.experiments.CancelExperiment(pb.CancelExperimentRequest(id=cancelled.id))
    await org.variants.DeletePromptVariant(pb.DeletePromptVariantRequest(id=c.id))
    lone = await org.variant("Lone")
    await org.variants.DeletePromptVariant(pb.DeletePromptVariantRequest(id=lone.id, etag=lone.etag))


# --- experiments ---------------------------------------------------------------------------------

async def test_create_experiment_validates_its_variants_all_at_once(org, other):
    a = await org.variant("A")
    inactive = await org.variant("Off", is_active=False)
    qualification = await org.variant("Q", QUALIFICATION)
    foreign = await other.variant("Foreign")
    error = await rpc_error(org.experiment([(a, 10), (a, 5), (inactive, 1), (qualification, 1), (foreign, 1)]))
    assert set(field_violations(error)) == {"experiment.variants[1].prompt_variant_id"}  # the duplicate first
    error = await rpc_error(org.experiment([(a, 10), (inactive, 1), (qualification, 1), (foreign, 1)]))
    assert set(field_violations(error)) == {f"experiment.variants[{i}].prompt_variant_id" for i in (1, 2, 3)}
    error = await rpc_error(org.experiment([(a, 0)]))
    assert set(field_violations(error)) == {"experiment.variants"}
    error = await rpc_error(org.experiments.CreateExperiment(pb.CreateExperimentRequest(experiment=pb.Experiment(
        agent_type=COMMUNICATION, name="", variants=[pb.ExperimentVariant(prompt_variant_id="x", weight=-1)]))))
    assert set(field_violations(error)) == {"experiment.name", "experiment.variants",
                                            "experiment.variants[0].prompt_variant_id", "experiment.variants[0].weight"}


async def test_experiment_lifecycle(org):
    a, b = await org.variant("A"), await org.variant("B")
    created = await org.experiment([(a, 1), (b, 1, True)], description="tone")
    assert created.status == enums.EXPERIMENT_STATUS_PAUSED and not created.HasField("start_time")
    assert created.goal_status == pb.GOAL_STATUS_SOLD
    assert [(v.prompt_variant_id, v.control) for v in created.variants] == [(b.id, True), (a.id, False)]

    async def act(method, request_type, experiment_id=created.id, etag=""):
        return await getattr(org.experiments, method)(request_type(id=experiment_id, etag=etag))

    illegal = (grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_TRANSITION")
    assert await code_and_reason(act("PauseExperiment", pb.PauseExperimentRequest)) == illegal
    assert await code_and_reason(act("CompleteExperiment", pb.CompleteExperimentRequest)) == illegal  # never started
    started = await act("StartExperiment", pb.StartExperimentRequest, etag=created.etag)
    assert started.status == enums.EXPERIMENT_STATUS_ACTIVE and started.HasField("start_time")
    assert await code_and_reason(act("StartExperiment", pb.StartExperimentRequest)) == illegal
    assert await code_and_reason(act("PauseExperiment", pb.PauseExperimentRequest, etag=created.etag)) == \
        (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    paused = await act("PauseExperiment", pb.PauseExperimentRequest)
    resumed = await act("StartExperiment", pb.StartExperimentRequest)
    assert resumed.start_time == started.start_time == paused.start_time  # the first start stays
    completed = await act("CompleteExperiment", pb.CompleteExperimentRequest)
    assert completed.status == enums.EXPERIMENT_STATUS_COMPLETED and completed.HasField("end_time")
    for method, request_type in (("StartExperiment", pb.StartExperimentRequest),
                                 ("PauseExperiment", pb.PauseExperimentRequest),
                                 ("CancelExperiment", pb.CancelExperimentRequest)):
        assert await code_and_reason(act(method, request_type)) == illegal
    assert await code_and_reason(org.experiments.UpdateExperiment(pb.UpdateExperimentRequest(
        experiment=pb.Experiment(id=created.id, name="late"), update_mask=mask("name")))) == \
        (grpc.StatusCode.FAILED_PRECONDITION, "EXPERIMENT_ENDED")
    draft = await org.experiment([(a, 1), (b, 1)])
    cancelled = await act("CancelExperiment", pb.CancelExperimentRequest, experiment_id=draft.id)
    assert cancelled.status == enums.EXPERIMENT_STATUS_CANCELLED
    listed = await org.experiments.ListExperiments(pb.ListExperimentsRequest(filter="status = COMPLETED"))
    assert [e.id for e in listed.experiments] == [created.id]


async def test_a_draft_whose_variant_was_deactivated_does_not_start(org):
    a, b = await org.variant("A"), await org.variant("B")
    draft = await org.experiment([(a, 1), (b, 1)])
    await org.variants.UpdatePromptVariant(pb.UpdatePromptVariantRequest(  # allowed: not started yet
        prompt_variant=pb.PromptVariant(id=b.id, is_active=False), update_mask=mask("is_active")))
    assert await code_and_reason(org.start(draft.id)) == (grpc.StatusCode.FAILED_PRECONDITION, "VARIANT_INACTIVE")
    # Cancelled, its variants may go; its results are then empty, not an error.
    await org.experiments.CancelExperiment(pb.CancelExperimentRequest(id=draft.id))
    for variant in (a, b):
        await org.variants.DeletePromptVariant(pb.DeletePromptVariantRequest(id=variant.id))
    assert not (await org.results(draft.id)).variants


async def test_racing_starts_leave_one_live_experiment_per_agent_type(org):
    a, b = await org.variant("A"), await org.variant("B")
    drafts = [await org.experiment([(a, 1), (b, 1)], name=f"E{i}") for i in range(6)]
    outcomes = await asyncio.gather(*(org.start(d.id) for d in drafts), return_exceptions=True)
    started = [o for o in outcomes if isinstance(o, pb.Experiment)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(started) == 1 and len(refused) == 5
    assert {(e.code(), error_info(e).reason) for e in refused} == {
        (grpc.StatusCode.FAILED_PRECONDITION, "EXPERIMENT_ALREADY_RUNNING")}
    # Paused after its start it is still live: another may not start; completed, one may.
    await org.experiments.PauseExperiment(pb.PauseExperimentRequest(id=started[0].id))
    assert (await code_and_reason(org.start(drafts[1].id if drafts[0].id == started[0].id else drafts[0].id)))[1] \
        == "EXPERIMENT_ALREADY_RUNNING"
    await org.experiments.CompleteExperiment(pb.CompleteExperimentRequest(id=started[0].id))
    next_one = next(d for d in drafts if d.id != started[0].id)
    assert (await org.start(next_one.id)).status == enums.EXPERIMENT_STATUS_ACTIVE
    # Another agent type is independent.
    await org.running(1, 1, agent_type=QUALIFICATION)


async def test_variants_are_locked_after_the_start_but_weights_may_change(org):
    experiment, (a, b) = await org.running(50, 50)
    c = await org.variant("C")
    update = pb.UpdateExperimentRequest(experiment=pb.Experiment(id=experiment.id, variants=[
        pb.ExperimentVariant(prompt_variant_id=a.id, weight=50), pb.ExperimentVariant(prompt_variant_id=c.id, weight=50)]),
        update_mask=mask("variants"))
    assert await code_and_reason(org.experiments.UpdateExperiment(update)) == \
        (grpc.StatusCode.FAILED_PRECONDITION, "VARIANTS_LOCKED")
    reweighted = await org.experiments.UpdateExperiment(pb.UpdateExperimentRequest(
        experiment=pb.Experiment(id=experiment.id, etag=experiment.etag, variants=[
            pb.ExperimentVariant(prompt_variant_id=a.id, weight=10, control=True),
            pb.ExperimentVariant(prompt_variant_id=b.id, weight=90)]), update_mask=mask("variants")))
    assert reweighted.weights_version == 2 and reweighted.etag != experiment.etag
    assert {v.prompt_variant_id: v.weight for v in reweighted.variants} == {a.id: 10, b.id: 90}
    renamed = await org.experiments.UpdateExperiment(pb.UpdateExperimentRequest(
        experiment=pb.Experiment(id=experiment.id, name="Renamed", goal_status=pb.GOAL_STATUS_NEGOTIATION),
        update_mask=mask("name", "goal_status")))
    assert (renamed.name, renamed.goal_status, renamed.weights_version) == ("Renamed", pb.GOAL_STATUS_NEGOTIATION, 2)


# --- ResolvePrompt -------------------------------------------------------------------------------

async def test_resolve_prompt_sources_in_order(org):
    client = await org.client()
    assert await code_and_reason(org.resolve(client.id)) == (grpc.StatusCode.NOT_FOUND, "PROMPT_NOT_CONFIGURED")
    settings = struct_pb2.Struct()
    settings.update({"temperature": 0.2})
    config = await org.config("Base", settings=settings)
    resolved = await org.resolve(client.id)
    assert (resolved.source, resolved.prompt, resolved.agent_configuration_id) == (
        pb.PROMPT_SOURCE_AGENT_CONFIGURATION, config.prompt, config.id)
    assert resolved.settings["temperature"] == 0.2
    default = await org.variant("Default", is_default=True)
    resolved = await org.resolve(client.id)
    assert (resolved.source, resolved.prompt_variant_id, resolved.prompt) == (
        pb.PROMPT_SOURCE_DEFAULT_VARIANT, default.id, default.prompt)
    assert resolved.settings["temperature"] == 0.2  # the configuration's settings go along
    experiment, variants = await org.running(1, 1)
    resolved = await org.resolve(client.id)
    assert resolved.source == pb.PROMPT_SOURCE_EXPERIMENT_VARIANT and resolved.newly_assigned
    assert resolved.experiment_id == experiment.id and resolved.prompt_variant_id in {v.id for v in variants}
    assert resolved.prompt == next(v.prompt for v in variants if v.id == resolved.prompt_variant_id)
    again = await org.resolve(client.id)
    assert again.prompt_variant_id == resolved.prompt_variant_id and not again.newly_assigned
    # Mirrored into crm, read back through crm's API.
    assert (await org.crm.GetClient(crm_pb2.GetClientRequest(id=client.id))).prompt_variant_id == \
        resolved.prompt_variant_id
    # Another agent type is not affected by this experiment.
    assert await code_and_reason(org.resolve(client.id, QUALIFICATION)) == (grpc.StatusCode.NOT_FOUND,
                                                                             "PROMPT_NOT_CONFIGURED")
    # Paused: the assigned client keeps its variant, a new client gets the default.
    await org.experiments.PauseExperiment(pb.PauseExperimentRequest(id=experiment.id))
    assert (await org.resolve(client.id)).prompt_variant_id == resolved.prompt_variant_id
    newcomer = await org.client()
    assert (await org.resolve(newcomer.id)).source == pb.PROMPT_SOURCE_DEFAULT_VARIANT
    # Completed: everyone gets the default again.
    await org.experiments.CompleteExperiment(pb.CompleteExperimentRequest(id=experiment.id))
    assert (await org.resolve(client.id)).source == pb.PROMPT_SOURCE_DEFAULT_VARIANT


async def test_resolve_prompt_validates_and_needs_a_real_client_to_assign(org):
    error = await rpc_error(org.prompts.ResolvePrompt(pb.ResolvePromptRequest(client_id="x")))
    assert set(field_violations(error)) == {"client_id", "agent_type"}
    await org.running(1, 1)
    assert await code_and_reason(org.resolve(str(uuid.uuid4()))) == (grpc.StatusCode.NOT_FOUND, "CLIENT_NOT_FOUND")


async def test_the_ai_agents_service_token_resolves_and_mirrors(org, keys_dir, agents_channel, crm_channel):
    agent = Agents(agents_channel, crm_channel, token=service_token(keys_dir, org.account))
    _, variants = await org.running(1, 1)
    client = await org.client()
    resolved = await agent.resolve(client.id)
    assert resolved.newly_assigned and resolved.prompt_variant_id in {v.id for v in variants}
    assert (await org.crm.GetClient(crm_pb2.GetClientRequest(id=client.id))).prompt_variant_id == \
        resolved.prompt_variant_id
    assert (await code_and_reason(agent.variant("Nope")))[1] == "ROLE_REQUIRED"
    webhook = Agents(agents_channel, crm_channel, token=service_token(keys_dir, org.account, "webhook"))
    assert await code_and_reason(webhook.resolve(client.id)) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")


async def test_racing_first_assignments_of_one_client(org, database):
    experiment, _ = await org.running(1, 1, 1)
    client = await org.client()
    answers = await asyncio.gather(*(org.resolve(client.id) for _ in range(20)))
    assert len({a.prompt_variant_id for a in answers}) == 1
    assert sum(a.newly_assigned for a in answers) == 1
    rows = admin_sql(database, "select prompt_variant_id::text, mirrored_at is not null from experiment_assignments"
                               " where experiment_id = %s and client_id = %s", experiment.id, client.id)
    assert rows == [(answers[0].prompt_variant_id, True)]


async def _agents_instance(service_dbs, keys_dir, stack):
    """Another agents server (its own process state: a cold cache), like a second replica or
    a restart, on the same database and the same crm."""
    from grpc import aio

    from libs.server.bootstrap import Resources, start_server
    from libs.settings import Settings
    from libs.tenancy.tokens import TokenVerifier, load_public_keys
    from services.agents.server import DEFINITION

    settings = Settings(keys_dir=keys_dir, service_addresses={"crm": f"127.0.0.1:{stack['crm']}"})
    resources = Resources(db=service_dbs["agents"], verifier=TokenVerifier(load_public_keys(keys_dir)),
                          settings=settings)
    running = await start_server(DEFINITION, resources)
    channel = aio.insecure_channel(f"127.0.0.1:{running.port}")

    async def stop():
        await channel.close()
        await running.stop(0)
        await resources.clients.close()
    return channel, stop


async def test_assignment_is_sticky_across_instances_and_restarts(org, service_dbs, keys_dir, stack, crm_channel):
    experiment, variants = await org.running(1, 1, 1)
    clients = [await org.client() for _ in range(12)]
    first = {c.id: (await org.resolve(c.id)).prompt_variant_id for c in clients}
    assert len(set(first.values())) > 1
    for _ in range(2):  # a second replica, then that replica restarted
        channel, stop = await _agents_instance(service_dbs, keys_dir, stack)
        try:
            replica = Agents(channel, crm_channel, org.account)
            assert {c.id: (await replica.resolve(c.id)).prompt_variant_id for c in clients} == first
        finally:
            await stop()
    # A client first seen by a fresh replica gets what the hash gives anywhere.
    from services.agents.assignment import choose

    newcomer = await org.client()
    channel, stop = await _agents_instance(service_dbs, keys_dir, stack)
    try:
        got = (await Agents(channel, crm_channel, org.account).resolve(newcomer.id)).prompt_variant_id
    finally:
        await stop()
    assert got == str(choose(uuid.UUID(experiment.id), uuid.UUID(newcomer.id),
                             [(uuid.UUID(v.id), 1) for v in variants]))


async def test_assignments_survive_a_change_of_weights(org):
    experiment, (a, b) = await org.running(50, 50)
    clients = [await org.client() for _ in range(16)]
    before = {c.id: (await org.resolve(c.id)).prompt_variant_id for c in clients}
    assert set(before.values()) == {a.id, b.id}
    await org.experiments.UpdateExperiment(pb.UpdateExperimentRequest(experiment=pb.Experiment(
        id=experiment.id, variants=[pb.ExperimentVariant(prompt_variant_id=a.id, weight=0, control=True),
                                    pb.ExperimentVariant(prompt_variant_id=b.id, weight=1)]),
        update_mask=mask("variants")))
    assert {c.id: (await org.resolve(c.id)).prompt_variant_id for c in clients} == before
    newcomers = [await org.client() for _ in range(8)]
    assert {(await org.resolve(c.id)).prompt_variant_id for c in newcomers} == {b.id}  # new weights: all to B
    results = await org.results(experiment.id)
    assert not results.sample_ratio.mismatch  # each client judged by the weights it came under


async def test_the_cache_sees_a_change_made_through_another_instance_at_once(org, service_dbs, keys_dir, stack,
                                                                          crm_channel):
    client = await org.client()
    first = await org.variant("First", is_default=True)
    assert (await org.resolve(client.id)).prompt_variant_id == first.id  # cached by the stack's instance
    channel, stop = await _agents_instance(service_dbs, keys_dir, stack)
    try:
        replica = Agents(channel, crm_channel, org.account)
        second = await replica.variant("Second", is_default=True)  # written through the other instance
        assert (await org.resolve(client.id)).prompt_variant_id == second.id
        await replica.variants.UpdatePromptVariant(pb.UpdatePromptVariantRequest(
            prompt_variant=pb.PromptVariant(id=second.id, prompt="Edited"), update_mask=mask("prompt")))
        assert (await org.resolve(client.id)).prompt == "Edited"
        experiment, _ = await replica.running(1, 1)
        assert (await org.resolve(client.id)).experiment_id == experiment.id
    finally:
        await stop()


# --- results -------------------------------------------------------------------------------------

def _wilson_by_hand(x: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = x / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def _z_by_hand(xa: int, na: int, xb: int, nb: int) -> tuple[float, float]:
    pooled = (xa + xb) / (na + nb)
    z = (xb / nb - xa / na) / math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    return z, math.erfc(abs(z) / math.sqrt(2))


def _seed_cohort(database, org: Agents, experiment: pb.Experiment, groups: list[tuple[str, int, int]],
                 version: int = 1) -> None:
    """Clients assigned (rows written directly, like a bulk import) to variants, and
    `converted` of them moved to SOLD after their assignment: groups of (variant, assigned,
    converted). The conversions are real status history rows, which crm serves."""
    org_id = org.account.organization.id
    now = datetime.now(UTC)
    with psycopg.connect(database.admin, autocommit=True) as conn:
        for variant_id, assigned, converted in groups:
            for index in range(assigned):
                client_id = uuid.uuid4()
                conn.execute("insert into clients (id, organization_id, phone) values (%s, %s, %s)",
                             (client_id, org_id, new_phone()))
                conn.execute("insert into experiment_assignments (organization_id, experiment_id, client_id,"
                             " prompt_variant_id, weights_version, created_at) values (%s, %s, %s, %s, %s, %s)",
                             (org_id, experiment.id, client_id, variant_id, version, now - timedelta(hours=2)))
                conn.execute("insert into client_status_history (organization_id, client_id, new_status, changed_by,"
                             " created_at) values (%s, %s, 'NEW_LEAD', 'SYSTEM', %s)",
                             (org_id, client_id, now - timedelta(days=1)))
                if index < converted:
                    conn.execute("insert into client_status_history (organization_id, client_id, old_status,"
                                 " new_status, changed_by, created_at) values (%s, %s, 'NEW_LEAD', 'SOLD', 'HUMAN', %s)",
                                 (org_id, client_id, now - timedelta(hours=1)))


async def test_results_match_independently_computed_statistics(org, database):
    experiment, (a, b) = await org.running(50, 50)
    _seed_cohort(database, org, experiment, [(a.id, 400, 40), (b.id, 400, 62)])
    results = await org.results(experiment.id)
    control, variant = results.variants
    assert (control.prompt_variant_id, control.control) == (a.id, True)
    assert (control.assigned, control.converted, variant.assigned, variant.converted) == (400, 40, 400, 62)
    assert (results.assigned, results.converted) == (800, 102)
    assert control.conversion_rate == pytest.approx(0.1) and variant.conversion_rate == pytest.approx(0.155)
    for result, x in ((control, 40), (variant, 62)):
        lower, upper = _wilson_by_hand(x, 400)
        assert result.conversion_rate_interval.lower == pytest.approx(lower, abs=1e-9)
        assert result.conversion_rate_interval.upper == pytest.approx(upper, abs=1e-9)
    z, p = _z_by_hand(40, 400, 62, 400)
    comparison = variant.comparison
    assert comparison.z_score == pytest.approx(z, rel=1e-9) and comparison.p_value == pytest.approx(p, rel=1e-6)
    assert comparison.adjusted_p_value == comparison.p_value  # one comparison: nothing to correct
    assert comparison.significant == (p < 0.05)
    assert comparison.difference == pytest.approx(0.055)
    assert comparison.relative_lift == pytest.approx(0.55)
    half = 1.959963984540054 * math.sqrt(0.1 * 0.9 / 400 + 0.155 * 0.845 / 400)
    assert comparison.difference_interval.lower == pytest.approx(0.055 - half, abs=1e-9)
    assert 0.9 < comparison.probability_to_beat_control < 1
    assert not control.HasField("comparison")
    assert results.sample_ratio.degrees_of_freedom == 1 and results.sample_ratio.p_value == pytest.approx(1.0)
    assert results.trustworthy and control.expected_share == pytest.approx(0.5)


async def test_results_with_three_variants_are_holm_corrected(org, database):
    experiment, (a, b, c) = await org.running(1, 1, 1)
    _seed_cohort(database, org, experiment, [(a.id, 300, 30), (b.id, 300, 45), (c.id, 300, 33)])
    results = await org.results(experiment.id)
    by_id = {v.prompt_variant_id: v for v in results.variants}
    pb_, pc = _z_by_hand(30, 300, 45, 300)[1], _z_by_hand(30, 300, 33, 300)[1]
    small, large = sorted([pb_, pc])
    adjusted = {small: min(1, 2 * small), large: max(min(1, 2 * small), min(1, large))}  # Holm, m = 2
    assert by_id[b.id].comparison.adjusted_p_value == pytest.approx(adjusted[pb_], rel=1e-6)
    assert by_id[c.id].comparison.adjusted_p_value == pytest.approx(adjusted[pc], rel=1e-6)
    assert any("Holm" in w for w in results.warnings)


async def test_a_sample_ratio_mismatch_flags_the_results(org, database):
    experiment, (a, b) = await org.running(50, 50)
    _seed_cohort(database, org, experiment, [(a.id, 300, 30), (b.id, 100, 10)])  # 3:1 where 1:1 was meant
    results = await org.results(experiment.id)
    chi_square = (300 - 200) ** 2 / 200 + (100 - 200) ** 2 / 200
    assert results.sample_ratio.chi_square == pytest.approx(chi_square)
    assert results.sample_ratio.p_value == pytest.approx(math.erfc(math.sqrt(chi_square / 2)), rel=1e-6)
    assert results.sample_ratio.mismatch and not results.trustworthy
    assert any("sample ratio mismatch" in w for w in results.warnings)


def _finite_everywhere(message) -> bool:
    text = json_format.MessageToJson(message)
    return "NaN" not in text and "Infinity" not in text


async def test_no_conversions_and_no_clients_are_defined_values(org, database):
    experiment, (a, b) = await org.running(50, 50)
    empty = await org.results(experiment.id)  # nobody assigned yet
    assert _finite_everywhere(empty)
    assert [(v.assigned, v.conversion_rate, v.conversion_rate_interval.lower, v.conversion_rate_interval.upper)
            for v in empty.variants] == [(0, 0.0, 0.0, 1.0)] * 2
    assert (empty.sample_ratio.degrees_of_freedom, empty.sample_ratio.p_value) == (0, 1.0)
    _seed_cohort(database, org, experiment, [(a.id, 50, 0), (b.id, 50, 0)])
    results = await org.results(experiment.id)
    assert _finite_everywhere(results) and results.converted == 0
    comparison = results.variants[1].comparison
    assert (comparison.z_score, comparison.p_value, comparison.difference) == (0.0, 1.0, 0.0)
    assert not comparison.HasField("relative_lift")  # the control's rate is 0: no lift to speak of
    assert comparison.probability_to_beat_control == pytest.approx(0.5)
    assert results.variants[0].conversion_rate_interval.lower == 0.0
    assert any("too early" in w for w in results.warnings)


async def test_conversions_through_the_real_apis(org):
    """Clients resolved by the AI's call, moved in crm: converted means reaching SOLD (or a
    later stage) after the assignment, once per client."""
    experiment, variants = await org.running(1, 1)
    sold_before = await org.client()
    await org.move(sold_before.id, S.CLIENT_STATUS_SOLD)  # sold before its assignment: not a conversion
    twice, skipped, lost, idle = [await org.client() for _ in range(4)]
    for client in (sold_before, twice, skipped, lost, idle):
        await org.resolve(client.id)
    await org.move(twice.id, S.CLIENT_STATUS_SOLD, S.CLIENT_STATUS_NEGOTIATION, S.CLIENT_STATUS_SOLD)
    await org.move(skipped.id, S.CLIENT_STATUS_SERVICE)  # past the goal in one move
    await org.move(lost.id, S.CLIENT_STATUS_CLOSED)
    results = await org.results(experiment.id)
    assert (results.assigned, results.converted) == (5, 2)
    assert results.goal_status == pb.GOAL_STATUS_SOLD
    # With the goal moved to NEGOTIATION, the client sold twice (NEGOTIATION in between) and the
    # ones who reached SOLD or SERVICE count; the one sold before its assignment counts only
    # if it moved again after: it did not.
    await org.experiments.UpdateExperiment(pb.UpdateExperimentRequest(experiment=pb.Experiment(
        id=experiment.id, goal_status=pb.GOAL_STATUS_NEGOTIATION), update_mask=mask("goal_status")))
    assert (await org.results(experiment.id)).converted == 2


# --- dialogue analysis ---------------------------------------------------------------------------

async def test_dialogue_analysis_records(org):
    variant = await org.variant("Analysed")
    data = struct_pb2.Struct()
    data.update({"conversations": 4, "qualified": 2})
    recommendations = struct_pb2.Value()
    json_format.ParseDict(["Ask for travel dates in the first reply"], recommendations)
    created = await org.analyses.CreateDialogueAnalysis(pb.CreateDialogueAnalysisRequest(
        dialogue_analysis=pb.DialogueAnalysis(analysis_type=enums.ANALYSIS_TYPE_SUCCESS_PATTERNS,
                                              prompt_variant_id=variant.id, data=data,
                                              recommendations=recommendations),
        request_id="6f1c1f0e-8c1a-4a43-9d55-3f2d0c1b7a12"))
    assert json_format.MessageToDict(created.recommendations) == ["Ask for travel dates in the first reply"]
    retried = await org.analyses.CreateDialogueAnalysis(pb.CreateDialogueAnalysisRequest(
        dialogue_analysis=pb.DialogueAnalysis(analysis_type=enums.ANALYSIS_TYPE_SUCCESS_PATTERNS, data=data),
        request_id="6f1c1f0e-8c1a-4a43-9d55-3f2d0c1b7a12"))
    assert retried.id == created.id
    assert await org.analyses.GetDialogueAnalysis(pb.GetDialogueAnalysisRequest(id=created.id)) == created
    listed = await org.analyses.ListDialogueAnalyses(pb.ListDialogueAnalysesRequest(
        filter=f'analysis_type = SUCCESS_PATTERNS AND prompt_variant_id = "{variant.id}"'))
    assert [r.id for r in listed.dialogue_analyses] == [created.id]
    error = await rpc_error(org.analyses.CreateDialogueAnalysis(pb.CreateDialogueAnalysisRequest(
        dialogue_analysis=pb.DialogueAnalysis(prompt_variant_id=str(uuid.uuid4())))))
    assert set(field_violations(error)) == {"dialogue_analysis.analysis_type", "dialogue_analysis.data"}
    error = await rpc_error(org.analyses.CreateDialogueAnalysis(pb.CreateDialogueAnalysisRequest(
        dialogue_analysis=pb.DialogueAnalysis(analysis_type=enums.ANALYSIS_TYPE_PROBLEM_AREAS, data=data,
                                              prompt_variant_id=str(uuid.uuid4())))))
    assert set(field_violations(error)) == {"dialogue_analysis.prompt_variant_id"}


async def test_run_conversion_analysis_computes_the_funnel(org):
    experiment, (a, b) = await org.running(1, 1)
    clients = [await org.client() for _ in range(6)]
    for client in clients:
        await org.resolve(client.id)
    await org.move(clients[0].id, S.CLIENT_STATUS_QUALIFIED, S.CLIENT_STATUS_WARMED)
    await org.move(clients[1].id, S.CLIENT_STATUS_QUALIFIED)
    await org.move(clients[2].id, S.CLIENT_STATUS_PROPOSAL_SENT)  # skips QUALIFIED and WARMED
    await org.move(clients[3].id, S.CLIENT_STATUS_CLOSED)
    record = await org.analyses.RunConversionAnalysis(pb.RunConversionAnalysisRequest(experiment_id=experiment.id))
    assert record.analysis_type == enums.ANALYSIS_TYPE_CONVERSION_METRICS
    data = json_format.MessageToDict(record.data)
    assert data["experiment_id"] == experiment.id and data["clients"] == 6 and data["closed"] == 1
    stages = {s["status"]: s for s in data["stages"]}
    assert [stages[s]["clients"] for s in ("NEW_LEAD", "QUALIFIED", "WARMED", "PROPOSAL_SENT", "NEGOTIATION")] == \
        [6, 3, 2, 1, 0]
    assert stages["QUALIFIED"]["conversion_from_previous"] == pytest.approx(0.5)
    assert stages["WARMED"]["conversion_from_previous"] == pytest.approx(2 / 3)
    assert stages["SOLD"]["conversion_from_previous"] is None  # nobody at NEGOTIATION
    assert stages["QUALIFIED"]["median_seconds_from_previous"] >= 0
    assert sum(v["clients"] for v in data["variants"].values()) == 6
    by_variant = await org.analyses.RunConversionAnalysis(pb.RunConversionAnalysisRequest(prompt_variant_id=a.id))
    assert by_variant.prompt_variant_id == a.id
    assert json_format.MessageToDict(by_variant.data)["clients"] == data["variants"].get(a.id, {"clients": 0})["clients"]
    later = datetime.now(UTC) + timedelta(days=1)
    request = pb.RunConversionAnalysisRequest(experiment_id=experiment.id)
    request.start_time.FromDatetime(later)
    assert json_format.MessageToDict((await org.analyses.RunConversionAnalysis(request)).data)["clients"] == 0
    assert await code_and_reason(org.analyses.RunConversionAnalysis(pb.RunConversionAnalysisRequest(
        prompt_variant_id=str(uuid.uuid4())))) == (grpc.StatusCode.NOT_FOUND, "PROMPT_VARIANT_NOT_FOUND")
    error = await rpc_error(org.analyses.RunConversionAnalysis(pb.RunConversionAnalysisRequest()))
    assert set(field_violations(error)) == {"subject"}


# --- policies and isolation ----------------------------------------------------------------------

async def test_managers_read_but_do_not_manage(org, identity_channel, agents_channel, crm_channel):
    manager = Agents(agents_channel, crm_channel, await add_user(identity_channel, org.account,
                                                                 identity_enums.USER_ROLE_MANAGER))
    experiment, (a, _) = await org.running(1, 1)
    assert (await manager.experiments.GetExperiment(pb.GetExperimentRequest(id=experiment.id))).id == experiment.id
    assert (await manager.results(experiment.id)).experiment_id == experiment.id
    for call in (manager.variant("M"), manager.config("M"), manager.experiment([(a, 1)]),
                 manager.experiments.PauseExperiment(pb.PauseExperimentRequest(id=experiment.id)),
                 manager.analyses.RunConversionAnalysis(pb.RunConversionAnalysisRequest(experiment_id=experiment.id))):
        assert await code_and_reason(call) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")


async def test_every_method_is_isolated_from_another_organization(org, other):
    config = await org.config("Mine")
    experiment, (a, b) = await org.running(1, 1)
    client = await org.client()
    await org.resolve(client.id)
    data = struct_pb2.Struct()
    data.update({"k": 1})
    analysis = await org.analyses.CreateDialogueAnalysis(pb.CreateDialogueAnalysisRequest(
        dialogue_analysis=pb.DialogueAnalysis(analysis_type=enums.ANALYSIS_TYPE_PROBLEM_AREAS, data=data)))
    not_found = grpc.StatusCode.NOT_FOUND
    calls = {
        "GetAgentConfiguration": other.configs.GetAgentConfiguration(pb.GetAgentConfigurationRequest(id=config.id)),
        "UpdateAgentConfiguration": other.configs.UpdateAgentConfiguration(pb.UpdateAgentConfigurationRequest(
            agent_configuration=pb.AgentConfiguration(id=config.id, name="x"), update_mask=mask("name"))),
        "DeleteAgentConfiguration": other.configs.DeleteAgentConfiguration(
            pb.DeleteAgentConfigurationRequest(id=config.id)),
        "GetPromptVariant": other.variants.GetPromptVariant(pb.GetPromptVariantRequest(id=a.id)),
        "UpdatePromptVariant": other.variants.UpdatePromptVariant(pb.UpdatePromptVariantRequest(
            prompt_variant=pb.PromptVariant(id=a.id, is_default=True), update_mask=mask("is_default"))),
        "DeletePromptVariant": other.variants.DeletePromptVariant(pb.DeletePromptVariantRequest(id=a.id)),
        "GetExperiment": other.experiments.GetExperiment(pb.GetExperimentRequest(id=experiment.id)),
        "UpdateExperiment": other.experiments.UpdateExperiment(pb.UpdateExperimentRequest(
            experiment=pb.Experiment(id=experiment.id, name="x"), update_mask=mask("name"))),
        "StartExperiment": other.experiments.StartExperiment(pb.StartExperimentRequest(id=experiment.id)),
        "PauseExperiment": other.experiments.PauseExperiment(pb.PauseExperimentRequest(id=experiment.id)),
        "CompleteExperiment": other.experiments.CompleteExperiment(pb.CompleteExperimentRequest(id=experiment.id)),
        "CancelExperiment": other.experiments.CancelExperiment(pb.CancelExperimentRequest(id=experiment.id)),
        "GetExperimentResults": other.results(experiment.id),
        "GetDialogueAnalysis": other.analyses.GetDialogueAnalysis(pb.GetDialogueAnalysisRequest(id=analysis.id)),
        "RunConversionAnalysis": other.analyses.RunConversionAnalysis(pb.RunConversionAnalysisRequest(
            experiment_id=experiment.id)),
    }
    for name, call in calls.items():
        assert (await rpc_error(call)).code() == not_found, name
    # Lists see nothing of A's.
    assert not (await other.configs.ListAgentConfigurations(pb.ListAgentConfigurationsRequest())).agent_configurations
    assert not (await other.variants.ListPromptVariants(pb.ListPromptVariantsRequest())).prompt_variants
    assert not (await other.experiments.ListExperiments(pb.ListExperimentsRequest())).experiments
    assert not (await other.analyses.ListDialogueAnalyses(pb.ListDialogueAnalysesRequest())).dialogue_analyses
    # A's variants cannot join B's experiment; B's prompt for A's client is B's own (none yet).
    error = await rpc_error(other.experiment([(a, 1), (b, 1)]))
    assert set(field_violations(error)) == {"experiment.variants[0].prompt_variant_id",
                                            "experiment.variants[1].prompt_variant_id"}
    assert await code_and_reason(other.resolve(client.id)) == (not_found, "PROMPT_NOT_CONFIGURED")
    await other.running(1, 1)  # with an experiment of its own, B cannot assign A's client
    assert await code_and_reason(other.resolve(client.id)) == (not_found, "CLIENT_NOT_FOUND")
    # Nothing of A's changed.
    assert (await org.experiments.GetExperiment(pb.GetExperimentRequest(id=experiment.id))).status == \
        enums.EXPERIMENT_STATUS_ACTIVE
    assert (await org.resolve(client.id)).experiment_id == experiment.id


async def test_creates_are_idempotent_with_a_request_id(org):
    request_id = str(uuid.uuid4())
    request = pb.CreatePromptVariantRequest(prompt_variant=pb.PromptVariant(
        agent_type=COMMUNICATION, name="Once", prompt="p"), request_id=request_id)
    first, second = await asyncio.gather(org.variants.CreatePromptVariant(request),
                                         org.variants.CreatePromptVariant(request))
    assert first.id == second.id
    a, b = await org.variant("A"), await org.variant("B")
    experiment = pb.CreateExperimentRequest(experiment=pb.Experiment(agent_type=COMMUNICATION, name="Once", variants=[
        pb.ExperimentVariant(prompt_variant_id=a.id, weight=1), pb.ExperimentVariant(prompt_variant_id=b.id, weight=1)]),
        request_id=request_id)
    assert (await org.experiments.CreateExperiment(experiment)).id == \
        (await org.experiments.CreateExperiment(experiment)).id
    config = pb.CreateAgentConfigurationRequest(agent_configuration=pb.AgentConfiguration(
        agent_type=COMMUNICATION, name="Once", prompt="p"), request_id=request_id)
    assert (await org.configs.CreateAgentConfiguration(config)).id == \
        (await org.configs.CreateAgentConfiguration(config)).id


def test_the_schema_enforces_one_per_agent_type(database):
    """The race-safety is the database's: partial unique indexes, and the cache's revision
    bumped by triggers on every table ResolvePrompt caches."""
    indexes = dict(admin_sql(database, "select indexname, indexdef from pg_indexes where indexname like 'uq_%'"))
    assert "WHERE is_default" in indexes["uq_prompt_variants_organization_id_agent_type_default"]
    assert "WHERE is_active" in indexes["uq_agent_configurations_organization_id_agent_type_active"]
    assert "'ACTIVE'" in indexes["uq_experiments_organization_id_agent_type_live"]
    triggers = {row[0] for row in admin_sql(database, "select tgrelid::regclass::text from pg_trigger"
                                                      " where tgname like '%bump_agent_revision'")}
    assert triggers == {"agent_configurations", "prompt_variants", "experiments", "experiment_variants"}
    json.dumps(indexes)  # plain values
