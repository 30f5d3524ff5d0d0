"""design_experiment's validation: every problem at once, field by field, with what is accepted."""

from __future__ import annotations

import pytest

from chaos_mcp.contract import REQUIRED_FIELDS, DesignExperimentInput, ValidationProblems, validate_design
from tests.helpers import multi_target_settings, valid_design


def problems(raw: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationProblems) as caught:
        validate_design(raw, multi_target_settings())
    return {p.field: p.message for p in caught.value.problems}


def test_a_complete_design_is_accepted_and_normalised() -> None:
    design = validate_design(valid_design(duration="PT5M"), multi_target_settings())
    assert design.duration_s == 300
    assert design.scenario == "n1_removal"
    assert design.blast_radius.targets == ["schedule"]


def test_an_empty_call_names_all_seven_required_fields_in_one_message() -> None:
    found = problems({})
    assert set(REQUIRED_FIELDS) <= set(found)
    for name in REQUIRED_FIELDS:
        assert "required and missing" in found[name]


def test_the_json_schema_requires_exactly_the_spec_required_context() -> None:
    schema = DesignExperimentInput.model_json_schema()
    assert sorted(schema["required"]) == sorted(REQUIRED_FIELDS)
    assert "success_criteria" in schema["properties"]
    assert all(p.get("description") for p in schema["properties"].values())


@pytest.mark.parametrize("duration", [300, "30s", "5 minutes", "PT5M", "10m", "90 seconds", 600])
def test_durations_in_every_accepted_form_are_read(duration: object) -> None:
    assert validate_design(valid_design(duration=duration), multi_target_settings()).duration_s > 0


@pytest.mark.parametrize("duration", ["11 minutes", 601, "PT1H", "forever", -5, "0s"])
def test_durations_beyond_ten_minutes_or_unreadable_are_refused(duration: object) -> None:
    assert "duration" in problems(valid_design(duration=duration))


def test_an_unconfigured_target_lists_the_configured_ones() -> None:
    message = problems(valid_design(target_component="prod-db"))["target_component"]
    assert "db (postgres, staging)" in message and "schedule (schedule, test)" in message


def test_environment_must_equal_the_targets_configured_environment() -> None:
    message = problems(valid_design(environment="staging"))["environment"]
    assert "'test'" in message


@pytest.mark.parametrize(
    "hypothesis",
    [
        "When [failure condition], the system should [expected behavior].",
        "TBD",
        "N/A",
        "",
        "The system is resilient.",
        "When the DB dies the API survives",
    ],
)
def test_template_vague_or_malformed_hypotheses_are_refused(hypothesis: str) -> None:
    assert "hypothesis" in problems(valid_design(hypothesis=hypothesis))


def test_placeholders_are_refused_anywhere_in_the_input() -> None:
    found = problems(valid_design(rollback_plan=["[how to revert]"], blast_radius={"scope": "TBD"}))
    assert "rollback_plan[0]" in found and "blast_radius.scope" in found


def test_blast_radius_must_be_structured_and_include_the_target() -> None:
    assert "blast_radius" in problems(valid_design(blast_radius="single service"))
    found = problems(valid_design(blast_radius={"scope": "x only", "targets": ["cache"]}))
    assert "must include target_component" in found["blast_radius.targets"]
    found = problems(
        valid_design(blast_radius={"scope": "x only", "max_rows": 0, "max_traffic_percent": 150})
    )
    assert "blast_radius.max_rows" in found and "blast_radius.max_traffic_percent" in found


def test_rollback_plan_must_be_a_non_empty_list_of_steps() -> None:
    assert "rollback_plan" in problems(valid_design(rollback_plan=[]))
    assert "rollback_plan" in problems(valid_design(rollback_plan="revert it"))


def test_criteria_accept_text_or_objects_and_refuse_the_unreadable() -> None:
    design = validate_design(
        valid_design(
            success_criteria=[
                "recovery_time < 2 min",
                {"metric": "coverage_pct", "op": ">=", "threshold": 100, "unit": "%"},
            ],
            abort_conditions=["acgme_violations > 50"],
        ),
        multi_target_settings(),
    )
    assert design.success_criteria[0].threshold == 2 and design.success_criteria[0].unit == "min"
    assert design.abort_conditions[0].text() == "acgme_violations > 50"
    assert design.abort_conditions[0].measured_by == "schedule"
    assert "success_criteria[0]" in problems(valid_design(success_criteria=["recovery should be quick"]))


def test_unknown_scenarios_and_mismatched_types_are_named() -> None:
    assert "scenario" in problems(valid_design(scenario="meteor_strike"))
    found = problems(valid_design(experiment_type="infrastructure"))
    assert "scenario" in found


def test_production_is_refused_when_the_policy_does_not_allow_it() -> None:
    found = problems(valid_design(environment="production"))
    assert "allow_production" in found["environment"]


def test_several_problems_come_back_together() -> None:
    found = problems(valid_design(hypothesis="TBD", duration="2 hours", rollback_plan=[], environment="prod"))
    assert {"hypothesis", "duration", "rollback_plan", "environment"} <= set(found)
