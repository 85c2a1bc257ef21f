from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class AgentType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_TYPE_UNSPECIFIED: _ClassVar[AgentType]
    AGENT_TYPE_COMMUNICATION: _ClassVar[AgentType]
    AGENT_TYPE_QUALIFICATION: _ClassVar[AgentType]
    AGENT_TYPE_PRODUCT_SELECTION: _ClassVar[AgentType]
    AGENT_TYPE_WARMING: _ClassVar[AgentType]
    AGENT_TYPE_SALES: _ClassVar[AgentType]
    AGENT_TYPE_SERVICE: _ClassVar[AgentType]
    AGENT_TYPE_FEEDBACK: _ClassVar[AgentType]

class ExperimentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_STATUS_UNSPECIFIED: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_ACTIVE: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_PAUSED: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_COMPLETED: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_CANCELLED: _ClassVar[ExperimentStatus]

class AnalysisType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANALYSIS_TYPE_UNSPECIFIED: _ClassVar[AnalysisType]
    ANALYSIS_TYPE_SUCCESS_PATTERNS: _ClassVar[AnalysisType]
    ANALYSIS_TYPE_PROBLEM_AREAS: _ClassVar[AnalysisType]
    ANALYSIS_TYPE_CONVERSION_METRICS: _ClassVar[AnalysisType]
    ANALYSIS_TYPE_RECOMMENDATIONS: _ClassVar[AnalysisType]
AGENT_TYPE_UNSPECIFIED: AgentType
AGENT_TYPE_COMMUNICATION: AgentType
AGENT_TYPE_QUALIFICATION: AgentType
AGENT_TYPE_PRODUCT_SELECTION: AgentType
AGENT_TYPE_WARMING: AgentType
AGENT_TYPE_SALES: AgentType
AGENT_TYPE_SERVICE: AgentType
AGENT_TYPE_FEEDBACK: AgentType
EXPERIMENT_STATUS_UNSPECIFIED: ExperimentStatus
EXPERIMENT_STATUS_ACTIVE: ExperimentStatus
EXPERIMENT_STATUS_PAUSED: ExperimentStatus
EXPERIMENT_STATUS_COMPLETED: ExperimentStatus
EXPERIMENT_STATUS_CANCELLED: ExperimentStatus
ANALYSIS_TYPE_UNSPECIFIED: AnalysisType
ANALYSIS_TYPE_SUCCESS_PATTERNS: AnalysisType
ANALYSIS_TYPE_PROBLEM_AREAS: AnalysisType
ANALYSIS_TYPE_CONVERSION_METRICS: AnalysisType
ANALYSIS_TYPE_RECOMMENDATIONS: AnalysisType
