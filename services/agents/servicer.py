"""agents' gRPC servicers: protobuf -> the domain's typed requests, entities -> protobuf.
No rules and no SQL here: validation is in domain.py, SQL in repository.py."""

from __future__ import annotations

from datetime import UTC

from google.protobuf import empty_pb2, json_format, struct_pb2

from libs.errors import InvalidArgument
from libs.tenancy.context import require_principal
from libs.wire import enum_label, enum_value, json_to_struct, parse_uuid, struct_to_dict, timestamp
from services.agents import domain
from services.agents.service import (
    AnalysesService,
    ConfigurationsService,
    ExperimentsService,
    PromptsService,
    VariantsService,
)
from soulkg.agents.v1 import agents_pb2, agents_pb2_grpc
from soulkg.agents.v1 import enums_pb2 as enums


def _id(value) -> str:
    return str(value) if value is not None else ""


def _optional(message, name: str):
    return getattr(message, name) if message.HasField(name) else None


def _struct(message, name: str, field: str) -> dict | None:
    return struct_to_dict(getattr(message, name), field) if message.HasField(name) else None


def _value(message: struct_pb2.Value, field: str):
    try:
        return json_format.MessageToDict(message)
    except ValueError:
        raise InvalidArgument.field(field, "must not contain NaN or infinite numbers") from None


def _json_value(value) -> struct_pb2.Value | None:
    if value is None:
        return None
    message = struct_pb2.Value()
    json_format.ParseDict(value, message)
    return message


def _time(message, name: str):
    return getattr(message, name).ToDatetime(tzinfo=UTC) if message.HasField(name) else None


def _list(request) -> domain.ListRequest:
    return domain.ListRequest(request.page_size, request.page_token, request.filter)


# --- agent configurations ------------------------------------------------------------------------

def configuration_message(row: domain.AgentConfiguration) -> agents_pb2.AgentConfiguration:
    return agents_pb2.AgentConfiguration(
        id=str(row.id), agent_type=enum_value(enums.AgentType, row.agent_type), name=row.name, prompt=row.prompt,
        settings=json_to_struct(row.settings), is_active=row.is_active, create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time), etag=row.etag)


def configuration_fields(message: agents_pb2.AgentConfiguration) -> domain.ConfigurationFields:
    return domain.ConfigurationFields(
        agent_type=enum_label(enums.AgentType, message.agent_type, "agent_configuration.agent_type"),
        name=message.name, prompt=message.prompt,
        settings=_struct(message, "settings", "agent_configuration.settings"),
        is_active=_optional(message, "is_active"))


class AgentConfigurationServicer(agents_pb2_grpc.AgentConfigurationServiceServicer):
    def __init__(self, service: ConfigurationsService) -> None:
        self.service = service

    async def CreateAgentConfiguration(self, request, context):
        require_principal()
        return configuration_message(await self.service.create(domain.Create(
            configuration_fields(request.agent_configuration), request.request_id)))

    async def GetAgentConfiguration(self, request, context):
        require_principal()
        return configuration_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListAgentConfigurations(self, request, context):
        page = await self.service.list(require_principal(), _list(request))
        return agents_pb2.ListAgentConfigurationsResponse(
            agent_configurations=[configuration_message(row) for row in page.items],
            next_page_token=page.next_page_token)

    async def UpdateAgentConfiguration(self, request, context):
        require_principal()
        message = request.agent_configuration
        return configuration_message(await self.service.update(domain.Update(
            message.id, configuration_fields(message), tuple(request.update_mask.paths), message.etag)))

    async def DeleteAgentConfiguration(self, request, context):
        require_principal()
        await self.service.delete(parse_uuid(request.id, "id"), request.etag)
        return empty_pb2.Empty()


# --- prompt variants -----------------------------------------------------------------------------

def variant_message(row: domain.PromptVariant) -> agents_pb2.PromptVariant:
    return agents_pb2.PromptVariant(
        id=str(row.id), agent_type=enum_value(enums.AgentType, row.agent_type), name=row.name,
        description=row.description, prompt=row.prompt, is_active=row.is_active, is_default=row.is_default,
        create_time=timestamp(row.create_time), update_time=timestamp(row.update_time), etag=row.etag)


def variant_fields(message: agents_pb2.PromptVariant) -> domain.VariantFields:
    return domain.VariantFields(
        agent_type=enum_label(enums.AgentType, message.agent_type, "prompt_variant.agent_type"), name=message.name,
        description=_optional(message, "description"), prompt=message.prompt,
        is_active=_optional(message, "is_active"), is_default=message.is_default)


class PromptVariantServicer(agents_pb2_grpc.PromptVariantServiceServicer):
    def __init__(self, service: VariantsService) -> None:
        self.service = service

    async def CreatePromptVariant(self, request, context):
        require_principal()
        return variant_message(await self.service.create(domain.Create(
            variant_fields(request.prompt_variant), request.request_id)))

    async def GetPromptVariant(self, request, context):
        require_principal()
        return variant_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListPromptVariants(self, request, context):
        page = await self.service.list(require_principal(), _list(request))
        return agents_pb2.ListPromptVariantsResponse(prompt_variants=[variant_message(r) for r in page.items],
                                                     next_page_token=page.next_page_token)

    async def UpdatePromptVariant(self, request, context):
        require_principal()
        message = request.prompt_variant
        return variant_message(await self.service.update(domain.Update(
            message.id, variant_fields(message), tuple(request.update_mask.paths), message.etag)))

    async def DeletePromptVariant(self, request, context):
        require_principal()
        await self.service.delete(parse_uuid(request.id, "id"), request.etag)
        return empty_pb2.Empty()


# --- experiments ---------------------------------------------------------------------------------

def experiment_message(row: domain.Experiment) -> agents_pb2.Experiment:
    return agents_pb2.Experiment(
        id=str(row.id), agent_type=enum_value(enums.AgentType, row.agent_type), name=row.name,
        description=row.description, status=enum_value(enums.ExperimentStatus, row.status),
        variants=[agents_pb2.ExperimentVariant(prompt_variant_id=str(v.prompt_variant_id), weight=v.weight,
                                               control=v.control) for v in row.variants],
        goal_status=enum_value(agents_pb2.GoalStatus, row.goal_status), start_time=timestamp(row.start_time),
        end_time=timestamp(row.end_time), weights_version=row.weights_version,
        create_time=timestamp(row.create_time), update_time=timestamp(row.update_time), etag=row.etag)


def experiment_fields(message: agents_pb2.Experiment) -> domain.ExperimentFields:
    return domain.ExperimentFields(
        agent_type=enum_label(enums.AgentType, message.agent_type, "experiment.agent_type"), name=message.name,
        description=_optional(message, "description"),
        variants=tuple(domain.VariantWeight(v.prompt_variant_id, v.weight, v.control) for v in message.variants),
        goal_status=enum_label(agents_pb2.GoalStatus, message.goal_status, "experiment.goal_status"))


def _interval(interval: domain.Interval) -> agents_pb2.Interval:
    return agents_pb2.Interval(lower=domain.finite(interval.lower), upper=domain.finite(interval.upper))


def _comparison(comparison: domain.Comparison | None) -> agents_pb2.ControlComparison | None:
    if comparison is None:
        return None
    f = domain.finite
    return agents_pb2.ControlComparison(
        difference=f(comparison.difference), difference_interval=_interval(comparison.difference_interval),
        relative_lift=None if comparison.relative_lift is None else f(comparison.relative_lift),
        z_score=f(comparison.z_score), p_value=f(comparison.p_value),
        adjusted_p_value=f(comparison.adjusted_p_value), significant=comparison.significant,
        probability_to_beat_control=f(comparison.probability_to_beat_control))


def results_message(results: domain.ExperimentResults) -> agents_pb2.ExperimentResults:
    f = domain.finite
    srm = results.sample_ratio
    return agents_pb2.ExperimentResults(
        experiment_id=str(results.experiment_id), status=enum_value(enums.ExperimentStatus, results.status),
        goal_status=enum_value(agents_pb2.GoalStatus, results.goal_status), assigned=results.assigned,
        converted=results.converted,
        variants=[agents_pb2.VariantResult(
            prompt_variant_id=str(v.prompt_variant_id), name=v.name, control=v.control, weight=v.weight,
            assigned=v.assigned, converted=v.converted, conversion_rate=f(v.conversion_rate),
            conversion_rate_interval=_interval(v.conversion_rate_interval), expected_share=f(v.expected_share),
            observed_share=f(v.observed_share), comparison=_comparison(v.comparison)) for v in results.variants],
        sample_ratio=agents_pb2.SampleRatioCheck(chi_square=f(srm.chi_square),
                                                 degrees_of_freedom=srm.degrees_of_freedom,
                                                 p_value=f(srm.p_value), mismatch=srm.mismatch),
        trustworthy=results.trustworthy, warnings=list(results.warnings),
        compute_time=timestamp(results.compute_time))


class ExperimentServicer(agents_pb2_grpc.ExperimentServiceServicer):
    def __init__(self, service: ExperimentsService) -> None:
        self.service = service

    async def CreateExperiment(self, request, context):
        require_principal()
        return experiment_message(await self.service.create(domain.Create(
            experiment_fields(request.experiment), request.request_id)))

    async def GetExperiment(self, request, context):
        require_principal()
        return experiment_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListExperiments(self, request, context):
        page = await self.service.list(require_principal(), _list(request))
        return agents_pb2.ListExperimentsResponse(experiments=[experiment_message(r) for r in page.items],
                                                  next_page_token=page.next_page_token)

    async def UpdateExperiment(self, request, context):
        require_principal()
        message = request.experiment
        return experiment_message(await self.service.update(domain.Update(
            message.id, experiment_fields(message), tuple(request.update_mask.paths), message.etag)))

    async def _change(self, request, action: str):
        require_principal()
        return experiment_message(await self.service.change_status(parse_uuid(request.id, "id"), action,
                                                                   request.etag))

    async def StartExperiment(self, request, context):
        return await self._change(request, "start")

    async def PauseExperiment(self, request, context):
        return await self._change(request, "pause")

    async def CompleteExperiment(self, request, context):
        return await self._change(request, "complete")

    async def CancelExperiment(self, request, context):
        return await self._change(request, "cancel")

    async def GetExperimentResults(self, request, context):
        require_principal()
        return results_message(await self.service.results(parse_uuid(request.id, "id")))


# --- prompts -------------------------------------------------------------------------------------

class PromptServicer(agents_pb2_grpc.PromptServiceServicer):
    def __init__(self, service: PromptsService) -> None:
        self.service = service

    async def ResolvePrompt(self, request, context):
        resolved = await self.service.resolve(require_principal(), domain.ResolveRequest(
            request.client_id, enum_label(enums.AgentType, request.agent_type, "agent_type")))
        return agents_pb2.ResolvePromptResponse(
            prompt=resolved.prompt, source=enum_value(agents_pb2.PromptSource, resolved.source),
            prompt_variant_id=_id(resolved.prompt_variant_id), experiment_id=_id(resolved.experiment_id),
            agent_configuration_id=_id(resolved.agent_configuration_id), settings=json_to_struct(resolved.settings),
            newly_assigned=resolved.newly_assigned)


# --- dialogue analysis ---------------------------------------------------------------------------

def analysis_message(row: domain.DialogueAnalysis) -> agents_pb2.DialogueAnalysis:
    return agents_pb2.DialogueAnalysis(
        id=str(row.id), analysis_type=enum_value(enums.AnalysisType, row.analysis_type),
        prompt_variant_id=str(row.prompt_variant_id) if row.prompt_variant_id else None,
        data=json_to_struct(row.data), recommendations=_json_value(row.recommendations),
        create_time=timestamp(row.create_time))


def analysis_fields(message: agents_pb2.DialogueAnalysis) -> domain.AnalysisFields:
    has_recommendations = message.HasField("recommendations")
    return domain.AnalysisFields(
        analysis_type=enum_label(enums.AnalysisType, message.analysis_type, "dialogue_analysis.analysis_type"),
        prompt_variant_id=_optional(message, "prompt_variant_id"),
        data=_struct(message, "data", "dialogue_analysis.data"),
        recommendations=_value(message.recommendations, "dialogue_analysis.recommendations")
        if has_recommendations else None,
        has_recommendations=has_recommendations)


class DialogueAnalysisServicer(agents_pb2_grpc.DialogueAnalysisServiceServicer):
    def __init__(self, service: AnalysesService) -> None:
        self.service = service

    async def CreateDialogueAnalysis(self, request, context):
        require_principal()
        return analysis_message(await self.service.create(domain.Create(
            analysis_fields(request.dialogue_analysis), request.request_id)))

    async def GetDialogueAnalysis(self, request, context):
        require_principal()
        return analysis_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListDialogueAnalyses(self, request, context):
        page = await self.service.list(require_principal(), _list(request))
        return agents_pb2.ListDialogueAnalysesResponse(dialogue_analyses=[analysis_message(r) for r in page.items],
                                                       next_page_token=page.next_page_token)

    async def RunConversionAnalysis(self, request, context):
        require_principal()
        subject = request.WhichOneof("subject")
        return analysis_message(await self.service.run_conversion_analysis(domain.ConversionAnalysisRequest(
            experiment_id=request.experiment_id if subject == "experiment_id" else None,
            prompt_variant_id=request.prompt_variant_id if subject == "prompt_variant_id" else None,
            start_time=_time(request, "start_time"), end_time=_time(request, "end_time"),
            request_id=request.request_id)))
