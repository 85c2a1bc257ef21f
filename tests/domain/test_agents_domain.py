"""agents' rules without a database: validation of every request (all violations at once),
the experiment lifecycle, locked variants, where a prompt comes from, conversions counted
once after the assignment, the funnel, and results built from counts."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import FailedPrecondition, InvalidArgument, NotFound
from services.agents import domain
from services.agents.domain import (
    Assignment,
    Create,
    Experiment,
    ExperimentFields,
    ExperimentVariant,
    LiveExperiment,
    Plan,
    PlanVariant,
    Update,
    VariantWeight,
    WeightsVersion,
)

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def violations(caught: pytest.ExceptionInfo) -> set[str]:
    return {field for field, _ in caught.value.violations}


def experiment(status="PAUSED", started=False, variants=((A, 50, True), (B, 50, False)), version=1,
               history=()) -> Experiment:
    return Experiment(uuid.UUID(int=99), "COMMUNICATION", "E", None, status,
                      tuple(ExperimentVariant(*v) for v in variants), "SOLD", NOW if started else None, None,
                      version, tuple(history), NOW, NOW, "etag")


# --- validation ------------------------------------------------------------------------------------

def test_experiment_create_collects_every_violation():
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_experiment_create(Create(ExperimentFields(
            agent_type=None, name=" ", description="x" * 3000,
            variants=(VariantWeight("nope", -1), VariantWeight(str(A), 2_000_000, True),
                      VariantWeight(str(A), 1, True))), request_id="bad"))
    assert violations(caught) == {
        "experiment.agent_type", "experiment.name", "experiment.description", "experiment.variants",
        "experiment.variants[0].prompt_variant_id", "experiment.variants[0].weight",
        "experiment.variants[1].weight", "experiment.variants[2].prompt_variant_id", "request_id"}


def test_experiment_create_defaults_the_goal_and_the_control():
    new = domain.validate_experiment_create(Create(ExperimentFields(
        agent_type="SALES", name="E", variants=(VariantWeight(str(B), 1), VariantWeight(str(A), 3)))))
    assert new.values["goal_status"] == "SOLD"
    assert new.variants == (ExperimentVariant(B, 1, True), ExperimentVariant(A, 3, False))  # the first listed


def test_weights_need_a_positive_sum_but_may_hold_zeros():
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_experiment_create(Create(ExperimentFields(
            agent_type="SALES", name="E", variants=(VariantWeight(str(A), 0), VariantWeight(str(B), 0)))))
    assert violations(caught) == {"experiment.variants"}
    domain.validate_experiment_create(Create(ExperimentFields(
        agent_type="SALES", name="E", variants=(VariantWeight(str(A), 0), VariantWeight(str(B), 1)))))


def test_updates_need_a_known_mask():
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_experiment_update(Update("x", ExperimentFields(), ("agent_type", "status")))
    assert violations(caught) == {"experiment.id", "update_mask.paths"}
    with pytest.raises(InvalidArgument):
        domain.validate_variant_update(Update(str(A), domain.VariantFields(), ()))
    update = domain.validate_configuration_update(Update(str(A), domain.ConfigurationFields(is_active=None),
                                                         ("is_active",)))
    assert update.changes == {"is_active": True}


def test_configuration_settings_are_a_capped_json_object_without_nan():
    fields = domain.ConfigurationFields(agent_type="SALES", name="C", prompt="p", settings={"t": math.nan})
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_configuration_create(Create(fields))
    assert violations(caught) == {"agent_configuration.settings"}
    new = domain.validate_configuration_create(Create(domain.ConfigurationFields(
        agent_type="SALES", name=" C ", prompt="  keep my spaces ", settings={"t": 0.5})))
    assert new.values == {"agent_type": "SALES", "name": "C", "prompt": "  keep my spaces ",
                          "settings": '{"t": 0.5}', "is_active": True}


def test_analysis_records_validate_type_data_and_recommendations():
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_analysis_create(Create(domain.AnalysisFields(
            prompt_variant_id="x", recommendations=[math.inf], has_recommendations=True)))
    assert violations(caught) == {"dialogue_analysis.analysis_type", "dialogue_analysis.prompt_variant_id",
                                  "dialogue_analysis.data", "dialogue_analysis.recommendations"}


# --- lifecycle -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "started", "action", "target"), [
    ("PAUSED", False, "start", "ACTIVE"), ("PAUSED", True, "start", "ACTIVE"), ("ACTIVE", True, "pause", "PAUSED"),
    ("ACTIVE", True, "complete", "COMPLETED"), ("PAUSED", True, "complete", "COMPLETED"),
    ("ACTIVE", True, "cancel", "CANCELLED"), ("PAUSED", False, "cancel", "CANCELLED"),
])
def test_legal_transitions(status, started, action, target):
    assert domain.transition(experiment(status, started), action) == target


@pytest.mark.parametrize(("status", "started", "action"), [
    ("PAUSED", False, "pause"), ("PAUSED", False, "complete"), ("ACTIVE", True, "start"),
    *[(final, True, action) for final in ("COMPLETED", "CANCELLED")
      for action in ("start", "pause", "complete", "cancel")],
])
def test_illegal_transitions(status, started, action):
    with pytest.raises(FailedPrecondition) as caught:
        domain.transition(experiment(status, started), action)
    assert caught.value.reason == "ILLEGAL_TRANSITION"


def test_started_experiments_keep_their_variants_and_control_but_not_their_weights():
    current = experiment("ACTIVE", started=True)
    same_set = domain.ExperimentUpdate(current.id, {}, (ExperimentVariant(A, 1, True), ExperimentVariant(B, 9, False)),
                                       "")
    domain.check_experiment_update(same_set, current)
    for variants in [(ExperimentVariant(A, 1, False), ExperimentVariant(B, 9, True)),
                     (ExperimentVariant(A, 1, True), ExperimentVariant(C, 9, False))]:
        with pytest.raises(FailedPrecondition) as caught:
            domain.check_experiment_update(domain.ExperimentUpdate(current.id, {}, variants, ""), current)
        assert caught.value.reason == "VARIANTS_LOCKED"
    domain.check_experiment_update(domain.ExperimentUpdate(current.id, {}, (ExperimentVariant(C, 1, True),
                                                                            ExperimentVariant(B, 1, False)), ""),
                                   experiment("PAUSED", started=False))
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_experiment_update(domain.ExperimentUpdate(current.id, {"name": "x"}, None, ""),
                                       experiment("COMPLETED", True))
    assert caught.value.reason == "EXPERIMENT_ENDED"


def test_weight_history_keeps_each_version():
    current = experiment("ACTIVE", True, version=2, history=(WeightsVersion(1, ((A, 1), (B, 1))),))
    history = domain.next_weights_history(current)
    assert history == [{"version": 1, "weights": {str(A): 1, str(B): 1}},
                       {"version": 2, "weights": {str(A): 50, str(B): 50}}]
    assert current.weights_of(1) == {A: 1, B: 1} and current.weights_of(2) == {A: 50, B: 50}


# --- resolving -------------------------------------------------------------------------------------

def _plan(status="ACTIVE", default=True, configuration=True) -> Plan:
    live = LiveExperiment(uuid.UUID(int=9), status, 1, (PlanVariant(A, 1, "prompt A"), PlanVariant(B, 1, "prompt B")))
    return Plan(live if status else None, (C, "default prompt") if default else None,
                (uuid.UUID(int=7), "config prompt", {"t": 1}) if configuration else None)


def _assigned(variant=A) -> Assignment:
    return Assignment(uuid.UUID(int=9), uuid.UUID(int=5), variant, 1, NOW, True)


def test_where_a_prompt_comes_from():
    client = uuid.UUID(int=5)
    assert domain.variant_to_assign(_plan(), client, None) in (A, B)
    assert domain.variant_to_assign(_plan(), client, _assigned()) is None
    assert domain.variant_to_assign(_plan("PAUSED"), client, None) is None  # paused: nobody new
    resolved = domain.resolve(_plan(), _assigned(B), newly_assigned=True)
    assert (resolved.source, resolved.prompt, resolved.settings, resolved.newly_assigned) == (
        "EXPERIMENT_VARIANT", "prompt B", {"t": 1}, True)
    assert domain.resolve(_plan("PAUSED"), None).source == "DEFAULT_VARIANT"
    assert domain.resolve(_plan(None), None).prompt == "default prompt"
    assert domain.resolve(_plan(None, default=False), None).source == "AGENT_CONFIGURATION"
    with pytest.raises(NotFound) as caught:
        domain.resolve(_plan(None, default=False, configuration=False), None)
    assert caught.value.reason == "PROMPT_NOT_CONFIGURED"


# --- results and funnels ---------------------------------------------------------------------------

def test_goal_stages_include_the_later_funnel_stages():
    assert domain.goal_stages("SOLD") == ("SOLD", "SERVICE")
    assert domain.goal_stages("QUALIFIED")[-1] == "SERVICE" and "CLOSED" not in domain.goal_stages("QUALIFIED")


def test_a_conversion_counts_once_and_only_after_the_assignment():
    at = {"a": NOW, "b": NOW, "c": NOW}
    changes = [("a", NOW - timedelta(minutes=1)), ("b", NOW + timedelta(minutes=1)), ("b", NOW + timedelta(days=1)),
               ("c", NOW), ("stranger", NOW)]
    assert domain.first_conversions(at, changes) == {"b", "c"}


def test_results_from_counts_use_each_versions_weights():
    current = experiment("ACTIVE", True, variants=((A, 10, True), (B, 90, False)), version=2,
                         history=(WeightsVersion(1, ((A, 50), (B, 50))),))
    counts = {(1, A): 100, (1, B): 100, (2, A): 10, (2, B): 90}
    results = domain.compute_results(current, {A: "a", B: "b"}, counts, {A: 11, B: 30}, NOW)
    control, variant = results.variants
    assert (control.assigned, variant.assigned, results.assigned, results.converted) == (110, 190, 300, 41)
    assert control.expected_share == pytest.approx(110 / 300)
    assert results.sample_ratio.p_value == pytest.approx(1.0) and results.trustworthy
    assert variant.comparison.relative_lift == pytest.approx((30 / 190 - 11 / 110) / (11 / 110))


def test_funnel_counts_skipped_stages_and_medians():
    changes = [("a", "NEW_LEAD", NOW), ("a", "QUALIFIED", NOW + timedelta(hours=1)),
               ("b", "NEW_LEAD", NOW), ("b", "WARMED", NOW + timedelta(hours=3)),  # QUALIFIED skipped
               ("c", "NEW_LEAD", NOW), ("c", "CLOSED", NOW + timedelta(hours=1)),
               ("a", "SOLD", NOW + timedelta(days=9))]  # after the period's end
    data = domain.funnel(["a", "b", "c"], changes, NOW + timedelta(days=1))
    stages = {s["status"]: s for s in data["stages"]}
    assert [stages[s]["clients"] for s in domain.FUNNEL] == [3, 2, 1, 0, 0, 0, 0]
    assert stages["QUALIFIED"]["conversion_from_previous"] == pytest.approx(2 / 3)
    assert stages["QUALIFIED"]["median_seconds_from_previous"] == pytest.approx((3600 + 3 * 3600) / 2)
    assert stages["PROPOSAL_SENT"]["conversion_from_previous"] == 0.0
    assert stages["NEGOTIATION"]["conversion_from_previous"] is None
    assert data["closed"] == 1 and data["clients"] == 3


def test_non_finite_statistics_never_reach_the_wire():
    assert domain.finite(0.5) == 0.5
    for value in (math.nan, math.inf):
        with pytest.raises(AssertionError):
            domain.finite(value)


def test_results_of_an_experiment_left_with_no_variant_are_empty():
    results = domain.compute_results(experiment("CANCELLED", True, variants=()), {}, {}, {}, NOW)
    assert (results.variants, results.assigned, results.sample_ratio.p_value) == ((), 0, 1.0)
