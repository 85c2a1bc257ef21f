import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import field_info_pb2 as _field_info_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from soulkg.agents.v1 import enums_pb2 as _enums_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GoalStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GOAL_STATUS_UNSPECIFIED: _ClassVar[GoalStatus]
    GOAL_STATUS_QUALIFIED: _ClassVar[GoalStatus]
    GOAL_STATUS_WARMED: _ClassVar[GoalStatus]
    GOAL_STATUS_PROPOSAL_SENT: _ClassVar[GoalStatus]
    GOAL_STATUS_NEGOTIATION: _ClassVar[GoalStatus]
    GOAL_STATUS_SOLD: _ClassVar[GoalStatus]
    GOAL_STATUS_SERVICE: _ClassVar[GoalStatus]

class PromptSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMPT_SOURCE_UNSPECIFIED: _ClassVar[PromptSource]
    PROMPT_SOURCE_EXPERIMENT_VARIANT: _ClassVar[PromptSource]
    PROMPT_SOURCE_DEFAULT_VARIANT: _ClassVar[PromptSource]
    PROMPT_SOURCE_AGENT_CONFIGURATION: _ClassVar[PromptSource]
GOAL_STATUS_UNSPECIFIED: GoalStatus
GOAL_STATUS_QUALIFIED: GoalStatus
GOAL_STATUS_WARMED: GoalStatus
GOAL_STATUS_PROPOSAL_SENT: GoalStatus
GOAL_STATUS_NEGOTIATION: GoalStatus
GOAL_STATUS_SOLD: GoalStatus
GOAL_STATUS_SERVICE: GoalStatus
PROMPT_SOURCE_UNSPECIFIED: PromptSource
PROMPT_SOURCE_EXPERIMENT_VARIANT: PromptSource
PROMPT_SOURCE_DEFAULT_VARIANT: PromptSource
PROMPT_SOURCE_AGENT_CONFIGURATION: PromptSource

class AgentConfiguration(_message.Message):
    __slots__ = ("id", "agent_type", "name", "prompt", "settings", "is_active", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    agent_type: _enums_pb2.AgentType
    name: str
    prompt: str
    settings: _struct_pb2.Struct
    is_active: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., agent_type: _Optional[_Union[_enums_pb2.AgentType, str]] = ..., name: _Optional[str] = ..., prompt: _Optional[str] = ..., settings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., is_active: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class PromptVariant(_message.Message):
    __slots__ = ("id", "agent_type", "name", "description", "prompt", "is_active", "is_default", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    agent_type: _enums_pb2.AgentType
    name: str
    description: str
    prompt: str
    is_active: bool
    is_default: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., agent_type: _Optional[_Union[_enums_pb2.AgentType, str]] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., prompt: _Optional[str] = ..., is_active: _Optional[bool] = ..., is_default: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class ExperimentVariant(_message.Message):
    __slots__ = ("prompt_variant_id", "weight", "control")
    PROMPT_VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    prompt_variant_id: str
    weight: int
    control: bool
    def __init__(self, prompt_variant_id: _Optional[str] = ..., weight: _Optional[int] = ..., control: _Optional[bool] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("id", "agent_type", "name", "description", "status", "variants", "goal_status", "start_time", "end_time", "weights_version", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    GOAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    agent_type: _enums_pb2.AgentType
    name: str
    description: str
    status: _enums_pb2.ExperimentStatus
    variants: _containers.RepeatedCompositeFieldContainer[ExperimentVariant]
    goal_status: GoalStatus
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    weights_version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., agent_type: _Optional[_Union[_enums_pb2.AgentType, str]] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[_enums_pb2.ExperimentStatus, str]] = ..., variants: _Optional[_Iterable[_Union[ExperimentVariant, _Mapping]]] = ..., goal_status: _Optional[_Union[GoalStatus, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., weights_version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("lower", "upper")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    lower: float
    upper: float
    def __init__(self, lower: _Optional[float] = ..., upper: _Optional[float] = ...) -> None: ...

class ControlComparison(_message.Message):
    __slots__ = ("difference", "difference_interval", "relative_lift", "z_score", "p_value", "adjusted_p_value", "significant", "probability_to_beat_control")
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_LIFT_FIELD_NUMBER: _ClassVar[int]
    Z_SCORE_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    ADJUSTED_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_TO_BEAT_CONTROL_FIELD_NUMBER: _ClassVar[int]
    difference: float
    difference_interval: Interval
    relative_lift: float
    z_score: float
    p_value: float
    adjusted_p_value: float
    significant: bool
    probability_to_beat_control: float
    def __init__(self, difference: _Optional[float] = ..., difference_interval: _Optional[_Union[Interval, _Mapping]] = ..., relative_lift: _Optional[float] = ..., z_score: _Optional[float] = ..., p_value: _Optional[float] = ..., adjusted_p_value: _Optional[float] = ..., significant: _Optional[bool] = ..., probability_to_beat_control: _Optional[float] = ...) -> None: ...

class VariantResult(_message.Message):
    __slots__ = ("prompt_variant_id", "name", "control", "weight", "assigned", "converted", "conversion_rate", "conversion_rate_interval", "expected_share", "observed_share", "comparison")
    PROMPT_VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHARE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_SHARE_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    prompt_variant_id: str
    name: str
    control: bool
    weight: int
    assigned: int
    converted: int
    conversion_rate: float
    conversion_rate_interval: Interval
    expected_share: float
    observed_share: float
    comparison: ControlComparison
    def __init__(self, prompt_variant_id: _Optional[str] = ..., name: _Optional[str] = ..., control: _Optional[bool] = ..., weight: _Optional[int] = ..., assigned: _Optional[int] = ..., converted: _Optional[int] = ..., conversion_rate: _Optional[float] = ..., conversion_rate_interval: _Optional[_Union[Interval, _Mapping]] = ..., expected_share: _Optional[float] = ..., observed_share: _Optional[float] = ..., comparison: _Optional[_Union[ControlComparison, _Mapping]] = ...) -> None: ...

class SampleRatioCheck(_message.Message):
    __slots__ = ("chi_square", "degrees_of_freedom", "p_value", "mismatch")
    CHI_SQUARE_FIELD_NUMBER: _ClassVar[int]
    DEGREES_OF_FREEDOM_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    MISMATCH_FIELD_NUMBER: _ClassVar[int]
    chi_square: float
    degrees_of_freedom: int
    p_value: float
    mismatch: bool
    def __init__(self, chi_square: _Optional[float] = ..., degrees_of_freedom: _Optional[int] = ..., p_value: _Optional[float] = ..., mismatch: _Optional[bool] = ...) -> None: ...

class ExperimentResults(_message.Message):
    __slots__ = ("experiment_id", "status", "goal_status", "assigned", "converted", "variants", "sample_ratio", "trustworthy", "warnings", "compute_time")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    GOAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATIO_FIELD_NUMBER: _ClassVar[int]
    TRUSTWORTHY_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    status: _enums_pb2.ExperimentStatus
    goal_status: GoalStatus
    assigned: int
    converted: int
    variants: _containers.RepeatedCompositeFieldContainer[VariantResult]
    sample_ratio: SampleRatioCheck
    trustworthy: bool
    warnings: _containers.RepeatedScalarFieldContainer[str]
    compute_time: _timestamp_pb2.Timestamp
    def __init__(self, experiment_id: _Optional[str] = ..., status: _Optional[_Union[_enums_pb2.ExperimentStatus, str]] = ..., goal_status: _Optional[_Union[GoalStatus, str]] = ..., assigned: _Optional[int] = ..., converted: _Optional[int] = ..., variants: _Optional[_Iterable[_Union[VariantResult, _Mapping]]] = ..., sample_ratio: _Optional[_Union[SampleRatioCheck, _Mapping]] = ..., trustworthy: _Optional[bool] = ..., warnings: _Optional[_Iterable[str]] = ..., compute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DialogueAnalysis(_message.Message):
    __slots__ = ("id", "analysis_type", "prompt_variant_id", "data", "recommendations", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    analysis_type: _enums_pb2.AnalysisType
    prompt_variant_id: str
    data: _struct_pb2.Struct
    recommendations: _struct_pb2.Value
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., analysis_type: _Optional[_Union[_enums_pb2.AnalysisType, str]] = ..., prompt_variant_id: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., recommendations: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAgentConfigurationRequest(_message.Message):
    __slots__ = ("agent_configuration", "request_id")
    AGENT_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    agent_configuration: AgentConfiguration
    request_id: str
    def __init__(self, agent_configuration: _Optional[_Union[AgentConfiguration, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetAgentConfigurationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListAgentConfigurationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListAgentConfigurationsResponse(_message.Message):
    __slots__ = ("agent_configurations", "next_page_token")
    AGENT_CONFIGURATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agent_configurations: _containers.RepeatedCompositeFieldContainer[AgentConfiguration]
    next_page_token: str
    def __init__(self, agent_configurations: _Optional[_Iterable[_Union[AgentConfiguration, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateAgentConfigurationRequest(_message.Message):
    __slots__ = ("agent_configuration", "update_mask")
    AGENT_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    agent_configuration: AgentConfiguration
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, agent_configuration: _Optional[_Union[AgentConfiguration, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteAgentConfigurationRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class CreatePromptVariantRequest(_message.Message):
    __slots__ = ("prompt_variant", "request_id")
    PROMPT_VARIANT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    prompt_variant: PromptVariant
    request_id: str
    def __init__(self, prompt_variant: _Optional[_Union[PromptVariant, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetPromptVariantRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListPromptVariantsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListPromptVariantsResponse(_message.Message):
    __slots__ = ("prompt_variants", "next_page_token")
    PROMPT_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prompt_variants: _containers.RepeatedCompositeFieldContainer[PromptVariant]
    next_page_token: str
    def __init__(self, prompt_variants: _Optional[_Iterable[_Union[PromptVariant, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdatePromptVariantRequest(_message.Message):
    __slots__ = ("prompt_variant", "update_mask")
    PROMPT_VARIANT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    prompt_variant: PromptVariant
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, prompt_variant: _Optional[_Union[PromptVariant, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeletePromptVariantRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class CreateExperimentRequest(_message.Message):
    __slots__ = ("experiment", "request_id")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    request_id: str
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetExperimentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments", "next_page_token")
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[Experiment]
    next_page_token: str
    def __init__(self, experiments: _Optional[_Iterable[_Union[Experiment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateExperimentRequest(_message.Message):
    __slots__ = ("experiment", "update_mask")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class StartExperimentRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class PauseExperimentRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class CompleteExperimentRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class CancelExperimentRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class GetExperimentResultsRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ResolvePromptRequest(_message.Message):
    __slots__ = ("client_id", "agent_type")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    agent_type: _enums_pb2.AgentType
    def __init__(self, client_id: _Optional[str] = ..., agent_type: _Optional[_Union[_enums_pb2.AgentType, str]] = ...) -> None: ...

class ResolvePromptResponse(_message.Message):
    __slots__ = ("prompt", "source", "prompt_variant_id", "experiment_id", "agent_configuration_id", "settings", "newly_assigned")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_CONFIGURATION_ID_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    NEWLY_ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    source: PromptSource
    prompt_variant_id: str
    experiment_id: str
    agent_configuration_id: str
    settings: _struct_pb2.Struct
    newly_assigned: bool
    def __init__(self, prompt: _Optional[str] = ..., source: _Optional[_Union[PromptSource, str]] = ..., prompt_variant_id: _Optional[str] = ..., experiment_id: _Optional[str] = ..., agent_configuration_id: _Optional[str] = ..., settings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., newly_assigned: _Optional[bool] = ...) -> None: ...

class CreateDialogueAnalysisRequest(_message.Message):
    __slots__ = ("dialogue_analysis", "request_id")
    DIALOGUE_ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    dialogue_analysis: DialogueAnalysis
    request_id: str
    def __init__(self, dialogue_analysis: _Optional[_Union[DialogueAnalysis, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetDialogueAnalysisRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListDialogueAnalysesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListDialogueAnalysesResponse(_message.Message):
    __slots__ = ("dialogue_analyses", "next_page_token")
    DIALOGUE_ANALYSES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dialogue_analyses: _containers.RepeatedCompositeFieldContainer[DialogueAnalysis]
    next_page_token: str
    def __init__(self, dialogue_analyses: _Optional[_Iterable[_Union[DialogueAnalysis, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RunConversionAnalysisRequest(_message.Message):
    __slots__ = ("experiment_id", "prompt_variant_id", "start_time", "end_time", "request_id")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    prompt_variant_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, experiment_id: _Optional[str] = ..., prompt_variant_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...
