"""agents' rules: what valid configurations, variants, experiments and analysis records are,
the experiment lifecycle, where a resolved prompt comes from, how results and funnels are
computed from counts. The entities the repository returns and the typed requests the
servicer builds.

Plain values only: no I/O, no SQL, no protobuf. Each validation collects every violation of
one request into one INVALID_ARGUMENT. The statistics are services/agents/statistics.py,
the hashing of clients into variants services/agents/assignment.py.
"""

from __future__ import annotations

import math
import statistics as pystats
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from libs.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from libs.validation import (
    Violations,
    json_object_text,
    json_text,
    mask_paths,
    optional_text,
    optional_uuid,
    parse_uuid,
)
from services.agents import assignment
from services.agents import statistics as stats

AGENT_TYPES = frozenset({"COMMUNICATION", "QUALIFICATION", "PRODUCT_SELECTION", "WARMING", "SALES", "SERVICE",
                         "FEEDBACK"})
EXPERIMENT_STATUSES = frozenset({"ACTIVE", "PAUSED", "COMPLETED", "CANCELLED"})
ANALYSIS_TYPES = frozenset({"SUCCESS_PATTERNS", "PROBLEM_AREAS", "CONVERSION_METRICS", "RECOMMENDATIONS"})
# crm's sales funnel, in order. CLOSED is an exit (won or lost), not a stage.
FUNNEL = ("NEW_LEAD", "QUALIFIED", "WARMED", "PROPOSAL_SENT", "NEGOTIATION", "SOLD", "SERVICE")
CLOSED = "CLOSED"
GOAL_STATUSES = frozenset(FUNNEL[1:])
DEFAULT_GOAL = "SOLD"  # the tour is bought (a catalog booking BOOKED); see README "Agents"

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_PROMPT = 100_000
MAX_SETTINGS_BYTES = 16 * 1024
MAX_DATA_BYTES = 256 * 1024
MAX_RECOMMENDATIONS_BYTES = 64 * 1024
MIN_VARIANTS, MAX_VARIANTS = 2, 10
MAX_WEIGHT = 1_000_000
FEW_CLIENTS = 100  # per variant: below it, results carry a warning
FEW_CONVERSIONS = 10

CONFIGURATION_WRITABLE = ("name", "prompt", "settings", "is_active")
VARIANT_WRITABLE = ("name", "description", "prompt", "is_active", "is_default")
EXPERIMENT_WRITABLE = ("name", "description", "goal_status", "variants")


# --- entities --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AgentConfiguration:
    id: UUID
    agent_type: str
    name: str
    prompt: str
    settings: dict | None
    is_active: bool
    create_time: datetime
    update_time: datetime
    etag: str


@dataclass(frozen=True, slots=True)
class PromptVariant:
    id: UUID
    agent_type: str
    name: str
    description: str | None
    prompt: str
    is_active: bool
    is_default: bool
    create_time: datetime
    update_time: datetime
    etag: str


@dataclass(frozen=True, slots=True)
class ExperimentVariant:
    prompt_variant_id: UUID
    weight: int
    control: bool


@dataclass(frozen=True, slots=True)
class Experiment:
    id: UUID
    agent_type: str
    name: str
    description: str | None
    status: str
    variants: tuple[ExperimentVariant, ...]  # the control first, then by variant id
    goal_status: str
    start_time: datetime | None  # None until first started
    end_time: datetime | None
    weights_version: int
    weights_history: tuple[WeightsVersion, ...]  # the versions before the current one
    create_time: datetime
    update_time: datetime
    etag: str

    @property
    def started(self) -> bool:
        return self.start_time is not None

    @property
    def live(self) -> bool:
        """Serving its assigned clients: ACTIVE, or PAUSED after it started."""
        return self.status == "ACTIVE" or (self.status == "PAUSED" and self.started)

    @property
    def ended(self) -> bool:
        return self.status in ("COMPLETED", "CANCELLED")

    @property
    def control(self) -> ExperimentVariant:
        return next((v for v in self.variants if v.control), self.variants[0])

    def weights(self) -> dict[UUID, int]:
        return {v.prompt_variant_id: v.weight for v in self.variants}

    def weights_of(self, version: int) -> dict[UUID, int]:
        """The weights in force at `version` (the current ones or a recorded earlier set)."""
        if version == self.weights_version:
            return self.weights()
        for entry in self.weights_history:
            if entry.version == version:
                return dict(entry.weights)
        return {}


@dataclass(frozen=True, slots=True)
class WeightsVersion:
    version: int
    weights: tuple[tuple[UUID, int], ...]

    def as_json(self) -> dict:
        return {"version": self.version, "weights": {str(v): w for v, w in self.weights}}

    @classmethod
    def from_json(cls, value: Mapping) -> WeightsVersion:
        return cls(int(value["version"]), tuple((UUID(v), int(w)) for v, w in value["weights"].items()))


@dataclass(frozen=True, slots=True)
class DialogueAnalysis:
    id: UUID
    analysis_type: str
    prompt_variant_id: UUID | None
    data: dict
    recommendations: object | None  # any JSON value
    create_time: datetime


@dataclass(frozen=True, slots=True)
class Assignment:
    experiment_id: UUID
    client_id: UUID
    prompt_variant_id: UUID
    weights_version: int
    assign_time: datetime
    mirrored: bool


# --- requests, as the servicer hands them over (unvalidated) -----------------------------------

@dataclass(frozen=True)
class ConfigurationFields:
    agent_type: str | None = None
    name: str = ""
    prompt: str = ""
    settings: dict | None = None
    is_active: bool | None = None


@dataclass(frozen=True)
class VariantFields:
    agent_type: str | None = None
    name: str = ""
    description: str | None = None
    prompt: str = ""
    is_active: bool | None = None
    is_default: bool = False


@dataclass(frozen=True)
class VariantWeight:
    prompt_variant_id: str
    weight: int
    control: bool = False


@dataclass(frozen=True)
class ExperimentFields:
    agent_type: str | None = None
    name: str = ""
    description: str | None = None
    variants: tuple[VariantWeight, ...] = ()
    goal_status: str | None = None


@dataclass(frozen=True)
class Create:
    """A create request: the resource's fields and an AIP-155 request id."""

    fields: object
    request_id: str = ""


@dataclass(frozen=True)
class Update:
    id: str
    fields: object
    paths: tuple[str, ...]
    etag: str = ""


@dataclass(frozen=True)
class ListRequest:
    page_size: int = 0
    page_token: str = ""
    filter: str = ""


@dataclass(frozen=True)
class AnalysisFields:
    analysis_type: str | None = None
    prompt_variant_id: str | None = None
    data: dict | None = None
    recommendations: object | None = None
    has_recommendations: bool = False


@dataclass(frozen=True)
class ConversionAnalysisRequest:
    experiment_id: str | None
    prompt_variant_id: str | None
    start_time: datetime | None
    end_time: datetime | None
    request_id: str = ""


# --- validated requests --------------------------------------------------------------------------

@dataclass(frozen=True)
class NewRow:
    values: dict[str, object]  # column -> value
    request_id: UUID | None


@dataclass(frozen=True)
class RowUpdate:
    id: UUID
    changes: dict[str, object]  # masked column -> new value
    etag: str


@dataclass(frozen=True)
class NewExperiment:
    values: dict[str, object]
    variants: tuple[ExperimentVariant, ...]
    request_id: UUID | None


@dataclass(frozen=True)
class ExperimentUpdate:
    id: UUID
    changes: dict[str, object]  # experiments' columns
    variants: tuple[ExperimentVariant, ...] | None  # None: not masked
    etag: str


@dataclass(frozen=True)
class ConversionAnalysis:
    experiment_id: UUID | None
    prompt_variant_id: UUID | None
    start_time: datetime | None
    end_time: datetime | None
    request_id: UUID | None


# --- shared checks -------------------------------------------------------------------------------

def _required_text(value: str, field: str, max_length: int) -> str:
    text = optional_text(value, field, max_length)
    if text is None:
        raise InvalidArgument.field(field, "is required")
    return text


def _prompt(value: str, field: str) -> str:
    """A prompt keeps its own whitespace (it is text for a model), but must say something."""
    if not value or not value.strip():
        raise InvalidArgument.field(field, "is required")
    if len(value) > MAX_PROMPT:
        raise InvalidArgument.field(field, f"must be at most {MAX_PROMPT} characters")
    if "\x00" in value:
        raise InvalidArgument.field(field, "must not contain NUL characters")
    return value


def _agent_type(value: str | None, field: str) -> str:
    if value is None:
        raise InvalidArgument.field(field, "is required (UNSPECIFIED is not allowed)")
    return value


def json_value_text(value: object, field: str, max_bytes: int) -> str:
    """Any JSON value (a google.protobuf.Value) as jsonb text: size-capped, no NaN."""
    return json_text(value, field, max_bytes)


def _request_id(value: str, violations: Violations) -> UUID | None:
    return violations.check(optional_uuid, value, "request_id")


# --- agent configurations ------------------------------------------------------------------------

def _configuration_value(name: str, fields: ConfigurationFields, prefix: str):
    field_name = prefix + name
    if name == "name":
        return _required_text(fields.name, field_name, MAX_NAME)
    if name == "prompt":
        return _prompt(fields.prompt, field_name)
    if name == "settings":
        return None if fields.settings is None else json_object_text(fields.settings, field_name,
                                                                       MAX_SETTINGS_BYTES)
    if name == "is_active":
        return True if fields.is_active is None else fields.is_active
    raise AssertionError(name)


def validate_configuration_create(request: Create) -> NewRow:
    fields: ConfigurationFields = request.fields
    violations = Violations()
    values = {"agent_type": violations.check(_agent_type, fields.agent_type, "agent_configuration.agent_type")}
    for name in CONFIGURATION_WRITABLE:
        values[name] = violations.check(_configuration_value, name, fields, "agent_configuration.")
    request_id = _request_id(request.request_id, violations)
    violations.raise_if_any("invalid agent configuration")
    return NewRow(values, request_id)


def validate_configuration_update(request: Update) -> RowUpdate:
    violations = Violations()
    row_id = violations.check(parse_uuid, request.id, "agent_configuration.id")
    paths = violations.check(mask_paths, request.paths, CONFIGURATION_WRITABLE) or []
    changes = {name: violations.check(_configuration_value, name, request.fields, "agent_configuration.")
               for name in paths}
    violations.raise_if_any("invalid agent configuration update")
    return RowUpdate(row_id, changes, request.etag)


def configuration_name_taken() -> AlreadyExists:
    return AlreadyExists("another configuration of this agent type has this name", reason="CONFIGURATION_NAME_TAKEN")


# --- prompt variants -----------------------------------------------------------------------------

def _variant_value(name: str, fields: VariantFields, prefix: str):
    field_name = prefix + name
    if name == "name":
        return _required_text(fields.name, field_name, MAX_NAME)
    if name == "description":
        return optional_text(fields.description, field_name, MAX_DESCRIPTION)
    if name == "prompt":
        return _prompt(fields.prompt, field_name)
    if name == "is_active":
        return True if fields.is_active is None else fields.is_active
    if name == "is_default":
        return fields.is_default
    raise AssertionError(name)


def validate_variant_create(request: Create) -> NewRow:
    fields: VariantFields = request.fields
    violations = Violations()
    values = {"agent_type": violations.check(_agent_type, fields.agent_type, "prompt_variant.agent_type")}
    for name in VARIANT_WRITABLE:
        values[name] = violations.check(_variant_value, name, fields, "prompt_variant.")
    request_id = _request_id(request.request_id, violations)
    violations.raise_if_any("invalid prompt variant")
    return NewRow(values, request_id)


def validate_variant_update(request: Update) -> RowUpdate:
    violations = Violations()
    row_id = violations.check(parse_uuid, request.id, "prompt_variant.id")
    paths = violations.check(mask_paths, request.paths, VARIANT_WRITABLE) or []
    changes = {name: violations.check(_variant_value, name, request.fields, "prompt_variant.") for name in paths}
    violations.raise_if_any("invalid prompt variant update")
    return RowUpdate(row_id, changes, request.etag)


def variant_in_use(message: str) -> FailedPrecondition:
    return FailedPrecondition(message, reason="VARIANT_IN_USE")


def check_variant_update(update: RowUpdate, current: PromptVariant, live_experiment: bool) -> None:
    """While a started experiment that has not ended serves the variant, its prompt stays as
    the experiment measured it and it stays active."""
    if not live_experiment:
        return
    if "prompt" in update.changes and update.changes["prompt"] != current.prompt:
        raise variant_in_use("a live experiment uses this variant: its prompt cannot change until the "
                             "experiment ends (create a new variant instead)")
    if update.changes.get("is_active") is False and current.is_active:
        raise variant_in_use("a live experiment uses this variant: it cannot be deactivated until the "
                             "experiment ends")


# --- experiments ---------------------------------------------------------------------------------

def _experiment_variants(items: Sequence[VariantWeight], violations: Violations) -> tuple[ExperimentVariant, ...]:
    if not MIN_VARIANTS <= len(items) <= MAX_VARIANTS:
        violations.add("experiment.variants", f"must list {MIN_VARIANTS} to {MAX_VARIANTS} variants")
    variants, seen = [], set()
    for index, item in enumerate(items[:MAX_VARIANTS]):
        prefix = f"experiment.variants[{index}]."
        variant_id = violations.check(parse_uuid, item.prompt_variant_id, prefix + "prompt_variant_id")
        if variant_id is not None and variant_id in seen:
            violations.add(prefix + "prompt_variant_id", "is listed twice")
        if variant_id is not None:
            seen.add(variant_id)
        if not 0 <= item.weight <= MAX_WEIGHT:
            violations.add(prefix + "weight", f"must be an integer from 0 to {MAX_WEIGHT}")
        if variant_id is not None:
            variants.append(ExperimentVariant(variant_id, item.weight, item.control))
    if items and sum(max(0, item.weight) for item in items) <= 0:
        violations.add("experiment.variants", "the weights must have a positive sum")
    if sum(1 for item in items if item.control) > 1:
        violations.add("experiment.variants", "at most one variant is the control")
    if variants and not any(v.control for v in variants):
        first = variants[0]
        variants[0] = ExperimentVariant(first.prompt_variant_id, first.weight, True)
    return tuple(variants)


def _goal(value: str | None) -> str:
    return DEFAULT_GOAL if value is None else value


def validate_experiment_create(request: Create) -> NewExperiment:
    fields: ExperimentFields = request.fields
    violations = Violations()
    values = {
        "agent_type": violations.check(_agent_type, fields.agent_type, "experiment.agent_type"),
        "name": violations.check(_required_text, fields.name, "experiment.name", MAX_NAME),
        "description": violations.check(optional_text, fields.description, "experiment.description",
                                        MAX_DESCRIPTION),
        "goal_status": _goal(fields.goal_status),
    }
    variants = _experiment_variants(fields.variants, violations)
    request_id = _request_id(request.request_id, violations)
    violations.raise_if_any("invalid experiment")
    return NewExperiment(values, variants, request_id)


def validate_experiment_update(request: Update) -> ExperimentUpdate:
    fields: ExperimentFields = request.fields
    violations = Violations()
    row_id = violations.check(parse_uuid, request.id, "experiment.id")
    paths = violations.check(mask_paths, request.paths, EXPERIMENT_WRITABLE) or []
    changes: dict[str, object] = {}
    if "name" in paths:
        changes["name"] = violations.check(_required_text, fields.name, "experiment.name", MAX_NAME)
    if "description" in paths:
        changes["description"] = violations.check(optional_text, fields.description, "experiment.description",
                                                  MAX_DESCRIPTION)
    if "goal_status" in paths:
        changes["goal_status"] = _goal(fields.goal_status)
    variants = _experiment_variants(fields.variants, violations) if "variants" in paths else None
    violations.raise_if_any("invalid experiment update")
    return ExperimentUpdate(row_id, changes, variants, request.etag)


def check_variants_exist(variants: Sequence[ExperimentVariant], agent_type: str,
                         found: Mapping[UUID, PromptVariant]) -> None:
    """Every variant is an active variant of the experiment's agent type in the organization
    (`found`: the organization's variants among those named)."""
    violations = Violations()
    for index, variant in enumerate(variants):
        field_name = f"experiment.variants[{index}].prompt_variant_id"
        row = found.get(variant.prompt_variant_id)
        if row is None:
            violations.add(field_name, "no such prompt variant in this organization")
        elif row.agent_type != agent_type:
            violations.add(field_name, f"is a {row.agent_type} variant; the experiment is {agent_type}")
        elif not row.is_active:
            violations.add(field_name, "is not active")
    violations.raise_if_any("invalid experiment variants")


def check_experiment_update(update: ExperimentUpdate, current: Experiment) -> None:
    """Ended experiments do not change; started ones keep their variants and control."""
    if current.ended:
        raise FailedPrecondition(f"the experiment is {current.status}", reason="EXPERIMENT_ENDED")
    if update.variants is None or not current.started:
        return
    before = {(v.prompt_variant_id, v.control) for v in current.variants}
    after = {(v.prompt_variant_id, v.control) for v in update.variants}
    if before != after:
        raise FailedPrecondition("the experiment has started: its variants and control are fixed; "
                                 "only their weights may change", reason="VARIANTS_LOCKED")


def weights_changed(current: Experiment, variants: Sequence[ExperimentVariant]) -> bool:
    return current.weights() != {v.prompt_variant_id: v.weight for v in variants}


def next_weights_history(current: Experiment) -> list[dict]:
    """The history after a change of weights: the current weights become a past version."""
    past = [entry.as_json() for entry in current.weights_history]
    return [*past, WeightsVersion(current.weights_version, tuple(sorted(current.weights().items(),
                                                                        key=lambda vw: vw[0].bytes))).as_json()]


# Lifecycle: action -> (the statuses it may start from, the status it leads to).
TRANSITIONS = {
    "start": (("PAUSED",), "ACTIVE"),
    "pause": (("ACTIVE",), "PAUSED"),
    "complete": (("ACTIVE", "PAUSED"), "COMPLETED"),
    "cancel": (("ACTIVE", "PAUSED"), "CANCELLED"),
}


def transition(experiment: Experiment, action: str) -> str:
    """The status `action` leads to, or FAILED_PRECONDITION (ILLEGAL_TRANSITION)."""
    sources, target = TRANSITIONS[action]
    if experiment.status not in sources:
        raise FailedPrecondition(f"cannot {action} an experiment that is {experiment.status}",
                                 reason="ILLEGAL_TRANSITION", metadata={"status": experiment.status})
    if action == "complete" and not experiment.started:
        raise FailedPrecondition("cannot complete an experiment that never started (cancel it instead)",
                                 reason="ILLEGAL_TRANSITION", metadata={"status": experiment.status})
    if action == "start" and sum(v.weight for v in experiment.variants) <= 0:
        raise FailedPrecondition("no variant has a positive weight", reason="ILLEGAL_TRANSITION")
    return target


def check_startable(experiment: Experiment, found: Mapping[UUID, PromptVariant]) -> None:
    """Every variant still exists and is active (one may have been deactivated while the
    experiment was not live)."""
    inactive = [str(v.prompt_variant_id) for v in experiment.variants
                if v.prompt_variant_id not in found or not found[v.prompt_variant_id].is_active]
    if inactive:
        raise FailedPrecondition("the experiment's variants must be active to start it: activate "
                                 f"{', '.join(inactive)} or change the variants", reason="VARIANT_INACTIVE",
                                 metadata={"prompt_variant_ids": ",".join(inactive)})


def unknown_reference(field_name: str, what: str) -> InvalidArgument:
    return InvalidArgument.field(field_name, f"no such {what} in this organization")


def client_not_found() -> NotFound:
    """An assignment for a client the organization does not have."""
    return NotFound("client not found", reason="CLIENT_NOT_FOUND")


def experiment_changed() -> Aborted:
    """An assignment raced a change of the experiment's variants: the caller may retry."""
    return Aborted("the experiment changed while the client was being assigned; retry",
                   reason="CONCURRENCY_CONFLICT")


def experiment_already_running() -> FailedPrecondition:
    return FailedPrecondition("another experiment of this agent type is live (active, or paused after it "
                              "started): complete or cancel it first", reason="EXPERIMENT_ALREADY_RUNNING")


# --- resolving a prompt --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PlanVariant:
    prompt_variant_id: UUID
    weight: int
    prompt: str


@dataclass(frozen=True, slots=True)
class LiveExperiment:
    id: UUID
    status: str  # ACTIVE or PAUSED
    weights_version: int
    variants: tuple[PlanVariant, ...]

    def prompt_of(self, variant_id: UUID) -> str | None:
        return next((v.prompt for v in self.variants if v.prompt_variant_id == variant_id), None)


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything ResolvePrompt needs for one agent type of one organization, but the
    client's own assignment: what services/agents/cache.py keeps."""

    experiment: LiveExperiment | None
    default_variant: tuple[UUID, str] | None  # (id, prompt) of the active default variant
    configuration: tuple[UUID, str, dict | None] | None  # (id, prompt, settings) of the active one


@dataclass(frozen=True, slots=True)
class ResolvedPrompt:
    prompt: str
    source: str  # EXPERIMENT_VARIANT, DEFAULT_VARIANT or AGENT_CONFIGURATION
    prompt_variant_id: UUID | None = None
    experiment_id: UUID | None = None
    agent_configuration_id: UUID | None = None
    settings: dict | None = None
    newly_assigned: bool = False


@dataclass(frozen=True)
class ResolveRequest:
    client_id: str
    agent_type: str | None


def validate_resolve(request: ResolveRequest) -> tuple[UUID, str]:
    violations = Violations()
    client_id = violations.check(parse_uuid, request.client_id, "client_id")
    agent_type = violations.check(_agent_type, request.agent_type, "agent_type")
    violations.raise_if_any("invalid prompt request")
    return client_id, agent_type


def variant_to_assign(plan: Plan, client_id: UUID, assigned: Assignment | None) -> UUID | None:
    """The variant a new assignment must record, or None when there is nothing to assign:
    no live experiment, already assigned, or paused (a paused experiment assigns no one)."""
    experiment = plan.experiment
    if experiment is None or assigned is not None or experiment.status != "ACTIVE":
        return None
    return assignment.choose(experiment.id, client_id, [(v.prompt_variant_id, v.weight) for v in experiment.variants])


def resolve(plan: Plan, assigned: Assignment | None, newly_assigned: bool = False) -> ResolvedPrompt:
    """The client's experiment variant; otherwise the default variant; otherwise the active
    configuration; otherwise NOT_FOUND (PROMPT_NOT_CONFIGURED)."""
    configuration = plan.configuration
    config_id, settings = (configuration[0], configuration[2]) if configuration else (None, None)
    if plan.experiment is not None and assigned is not None:
        prompt = plan.experiment.prompt_of(assigned.prompt_variant_id)
        if prompt is not None:
            return ResolvedPrompt(prompt, "EXPERIMENT_VARIANT", assigned.prompt_variant_id, plan.experiment.id,
                                  config_id, settings, newly_assigned)
    if plan.default_variant is not None:
        variant_id, prompt = plan.default_variant
        return ResolvedPrompt(prompt, "DEFAULT_VARIANT", variant_id, None, config_id, settings)
    if configuration is not None:
        return ResolvedPrompt(configuration[1], "AGENT_CONFIGURATION", None, None, config_id, settings)
    raise NotFound("no prompt is configured for this agent type: start an experiment, make a variant the "
                   "default or activate a configuration", reason="PROMPT_NOT_CONFIGURED")


# --- results ---------------------------------------------------------------------------------------

def goal_stages(goal: str) -> tuple[str, ...]:
    """The statuses whose reaching counts as reaching `goal`: the goal and the later stages of
    the funnel (a client moved straight past the goal reached it on that move)."""
    return FUNNEL[FUNNEL.index(goal):]


@dataclass(frozen=True, slots=True)
class Interval:
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Comparison:
    difference: float
    difference_interval: Interval
    relative_lift: float | None
    z_score: float
    p_value: float
    adjusted_p_value: float
    significant: bool
    probability_to_beat_control: float


@dataclass(frozen=True, slots=True)
class VariantResult:
    prompt_variant_id: UUID
    name: str
    control: bool
    weight: int
    assigned: int
    converted: int
    conversion_rate: float
    conversion_rate_interval: Interval
    expected_share: float
    observed_share: float
    comparison: Comparison | None


@dataclass(frozen=True, slots=True)
class SampleRatio:
    chi_square: float
    degrees_of_freedom: int
    p_value: float
    mismatch: bool


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    experiment_id: UUID
    status: str
    goal_status: str
    assigned: int
    converted: int
    variants: tuple[VariantResult, ...]
    sample_ratio: SampleRatio
    trustworthy: bool
    warnings: tuple[str, ...]
    compute_time: datetime


def first_conversions(assigned_at: Mapping[str, datetime], changes: Iterable[tuple[str, datetime]]) -> set[str]:
    """The clients (ids as text) with a change into a goal stage at or after their
    assignment: each client once, however many such changes it has."""
    converted = set()
    for client_id, time in changes:
        start = assigned_at.get(client_id)
        if start is not None and time >= start:
            converted.add(client_id)
    return converted


def compute_results(experiment: Experiment, names: Mapping[UUID, str],
                    counts: Mapping[tuple[int, UUID], int], converted: Mapping[UUID, int],
                    now: datetime) -> ExperimentResults:
    """The results from counts: `counts[(weights version, variant)]` clients assigned,
    `converted[variant]` of them converted."""
    # The control first. (An experiment can be left with no variant: a cancelled one whose
    # variants were deleted.)
    ordered = [experiment.control, *(v for v in experiment.variants if not v.control)] if experiment.variants else []
    assigned = {v.prompt_variant_id: sum(n for (_, vid), n in counts.items() if vid == v.prompt_variant_id)
                for v in ordered}
    total = sum(assigned.values())
    expected = _expected_counts(experiment, counts)
    srm_groups = []
    for version in sorted({version for version, _ in counts}):
        weights = experiment.weights_of(version)
        ids = [v.prompt_variant_id for v in ordered]
        srm_groups.append(([counts.get((version, vid), 0) for vid in ids], [weights.get(vid, 0) for vid in ids]))
    srm = stats.sample_ratio_test(srm_groups)

    control = ordered[0].prompt_variant_id if ordered else None
    xc, nc = converted.get(control, 0), assigned.get(control, 0)
    tests = {v.prompt_variant_id: stats.two_proportion_z_test(xc, nc, converted.get(v.prompt_variant_id, 0),
                                                              assigned[v.prompt_variant_id])
             for v in ordered[1:]}
    adjusted = dict(zip(tests, stats.holm([p for _, p in tests.values()]), strict=True))

    results = []
    for variant in ordered:
        vid = variant.prompt_variant_id
        x, n = converted.get(vid, 0), assigned[vid]
        comparison = None
        if vid != control:
            z, p = tests[vid]
            difference, lower, upper = stats.difference_interval(xc, nc, x, n)
            control_rate = stats.rate(xc, nc)
            comparison = Comparison(
                difference, Interval(lower, upper),
                (stats.rate(x, n) - control_rate) / control_rate if control_rate > 0 and n > 0 else None,
                z, p, adjusted[vid], adjusted[vid] < stats.SIGNIFICANCE, stats.probability_to_beat(xc, nc, x, n))
        results.append(VariantResult(
            vid, names.get(vid, ""), vid == control, variant.weight, n, x, stats.rate(x, n),
            Interval(*stats.wilson_interval(x, n)), expected.get(vid, 0.0) / total if total else 0.0,
            n / total if total else 0.0, comparison))

    warnings = _warnings(srm, results)
    all_converted = sum(r.converted for r in results)
    return ExperimentResults(experiment.id, experiment.status, experiment.goal_status, total, all_converted,
                             tuple(results), SampleRatio(srm.chi_square, srm.degrees_of_freedom, srm.p_value,
                                                         srm.mismatch),
                             not srm.mismatch, tuple(warnings), now)


def _expected_counts(experiment: Experiment, counts: Mapping[tuple[int, UUID], int]) -> dict[UUID, float]:
    expected: dict[UUID, float] = {}
    for version in {version for version, _ in counts}:
        weights = experiment.weights_of(version)
        clients = sum(n for (v, _), n in counts.items() if v == version)
        weight_sum = sum(weights.values())
        for vid, weight in weights.items():
            if weight_sum > 0:
                expected[vid] = expected.get(vid, 0.0) + clients * weight / weight_sum
    return expected


def _warnings(srm: stats.SampleRatioResult, results: Sequence[VariantResult]) -> list[str]:
    warnings = []
    if srm.mismatch:
        warnings.append(
            f"sample ratio mismatch (chi-square {srm.chi_square:.2f}, {srm.degrees_of_freedom} degrees of freedom, "
            f"p = {srm.p_value:.2g} < {stats.SRM_THRESHOLD}): the clients were not split as the weights say, so "
            "the assignment or its recording is broken; do not trust these comparisons")
    if any(r.assigned < FEW_CLIENTS for r in results):
        warnings.append(f"a variant has fewer than {FEW_CLIENTS} clients: the intervals are wide and the tests weak")
    if sum(r.converted for r in results) < FEW_CONVERSIONS:
        warnings.append(f"fewer than {FEW_CONVERSIONS} conversions in all: too early to compare the variants")
    if len(results) > 2:
        warnings.append(f"{len(results) - 1} comparisons with the control: p-values are Holm-corrected")
    return warnings


def finite(value: float) -> float:
    """A value bound for the wire; NaN or infinity would be a bug in the statistics."""
    if not math.isfinite(value):
        raise AssertionError("a non-finite statistic")
    return value


# --- conversion analysis -------------------------------------------------------------------------

def validate_conversion_analysis(request: ConversionAnalysisRequest) -> ConversionAnalysis:
    violations = Violations()
    experiment_id = violations.check(optional_uuid, request.experiment_id, "experiment_id")
    variant_id = violations.check(optional_uuid, request.prompt_variant_id, "prompt_variant_id")
    if not request.experiment_id and not request.prompt_variant_id:
        violations.add("subject", "name an experiment_id or a prompt_variant_id")
    if request.start_time and request.end_time and request.end_time <= request.start_time:
        violations.add("end_time", "must be after start_time")
    request_id = _request_id(request.request_id, violations)
    violations.raise_if_any("invalid conversion analysis")
    return ConversionAnalysis(experiment_id, variant_id, request.start_time, request.end_time, request_id)


def funnel(client_ids: Iterable[str], changes: Iterable[tuple[str, str, datetime]],
           end_time: datetime) -> dict:
    """The funnel of a set of clients from their status changes (client, new status, time),
    those before `end_time`: per stage the clients that reached it (a later stage reached
    counts for the skipped ones), the conversion from the previous stage (None with no one
    at the previous stage) and the median seconds from the previous stage; and the clients
    closed. JSON-ready (no NaN)."""
    clients = set(client_ids)
    reached: dict[str, dict[int, datetime]] = {c: {} for c in clients}
    closed = set()
    for client_id, status, time in changes:
        if client_id not in reached or time >= end_time:
            continue
        if status == CLOSED:
            closed.add(client_id)
            continue
        if status not in FUNNEL:
            continue
        stage = FUNNEL.index(status)
        times = reached[client_id]
        for earlier in range(stage + 1):  # reaching a stage reaches every stage before it
            if earlier not in times or time < times[earlier]:
                times[earlier] = time
    stages = []
    previous_count = None
    for index, status in enumerate(FUNNEL):
        at = [times for times in reached.values() if index in times]
        entry: dict[str, object] = {"status": status, "clients": len(at)}
        if index > 0:
            entry["conversion_from_previous"] = (len(at) / previous_count) if previous_count else None
            gaps = [(times[index] - times[index - 1]).total_seconds() for times in at if index - 1 in times]
            entry["median_seconds_from_previous"] = pystats.median(gaps) if gaps else None
        stages.append(entry)
        previous_count = len(at)
    return {"clients": len(clients), "stages": stages, "closed": len(closed)}


def _analysis_type(value: str | None, field_name: str) -> str:
    if value is None:
        raise InvalidArgument.field(field_name, "is required (UNSPECIFIED is not allowed)")
    return value


def _data(value: dict | None, field_name: str) -> str:
    if value is None:
        raise InvalidArgument.field(field_name, "is required (a JSON object)")
    return json_object_text(value, field_name, MAX_DATA_BYTES)


def validate_analysis_create(request: Create) -> NewRow:
    fields: AnalysisFields = request.fields
    violations = Violations()
    values = {
        "analysis_type": violations.check(_analysis_type, fields.analysis_type, "dialogue_analysis.analysis_type"),
        "prompt_variant_id": violations.check(optional_uuid, fields.prompt_variant_id,
                                              "dialogue_analysis.prompt_variant_id"),
        "data": violations.check(_data, fields.data, "dialogue_analysis.data"),
    }
    if fields.has_recommendations:
        values["recommendations"] = violations.check(json_value_text, fields.recommendations,
                                                     "dialogue_analysis.recommendations", MAX_RECOMMENDATIONS_BYTES)
    request_id = _request_id(request.request_id, violations)
    violations.raise_if_any("invalid dialogue analysis")
    return NewRow({k: v for k, v in values.items() if v is not None}, request_id)


def conversion_metrics(subject: Mapping[str, object], cohort: Sequence[tuple[str, UUID]],
                       changes: Sequence[tuple[str, str, datetime]], start: datetime | None, end: datetime,
                       by_variant: bool) -> dict:
    """The `data` of a CONVERSION_METRICS record: the subject, the period, the cohort's funnel
    and, for an experiment, the funnel of each variant's clients."""
    data: dict[str, object] = {
        **subject,
        "period": {"start_time": start.isoformat() if start else None, "end_time": end.isoformat()},
        **funnel([client for client, _ in cohort], changes, end),
    }
    if by_variant:
        groups: dict[UUID, list[str]] = {}
        for client, variant in cohort:
            groups.setdefault(variant, []).append(client)
        data["variants"] = {str(variant): funnel(clients, changes, end) for variant, clients in sorted(
            groups.items(), key=lambda item: str(item[0]))}
    return data
