"""agents' process: `python -m services.agents.server` (make run starts it)."""

from __future__ import annotations

from grpc import aio

from libs.persistence import KeysetPager
from libs.server.bootstrap import Resources, ServiceDefinition, main
from services.agents.cache import PlanCache
from services.agents.policies import POLICIES
from services.agents.service import (
    AnalysesService,
    ConfigurationsService,
    CrmFunnel,
    ExperimentsService,
    PromptsService,
    VariantsService,
)
from services.agents.servicer import (
    AgentConfigurationServicer,
    DialogueAnalysisServicer,
    ExperimentServicer,
    PromptServicer,
    PromptVariantServicer,
)
from soulkg.agents.v1 import agents_pb2, agents_pb2_grpc


def register(server: aio.Server, resources: Resources) -> None:
    pager = KeysetPager(resources.page_tokens)
    funnel = CrmFunnel(resources.clients)
    agents_pb2_grpc.add_AgentConfigurationServiceServicer_to_server(
        AgentConfigurationServicer(ConfigurationsService(resources.db, pager)), server)
    agents_pb2_grpc.add_PromptVariantServiceServicer_to_server(
        PromptVariantServicer(VariantsService(resources.db, pager)), server)
    agents_pb2_grpc.add_ExperimentServiceServicer_to_server(
        ExperimentServicer(ExperimentsService(resources.db, pager, funnel)), server)
    agents_pb2_grpc.add_PromptServiceServicer_to_server(
        PromptServicer(PromptsService(resources.db, PlanCache(), resources.clients)), server)
    agents_pb2_grpc.add_DialogueAnalysisServiceServicer_to_server(
        DialogueAnalysisServicer(AnalysesService(resources.db, pager, funnel)), server)


DEFINITION = ServiceDefinition(name="agents", register=register, policies=POLICIES,
                               file_descriptors=[agents_pb2.DESCRIPTOR])

if __name__ == "__main__":
    main(DEFINITION)
