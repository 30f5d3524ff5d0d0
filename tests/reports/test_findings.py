"""Findings and recommendations from evidence the schedule target cannot produce on its own.

Each test takes a real experiment's journal and changes one fact — a second target that moved, a
revert that failed, a recovery over its criterion, a detection that never came, a degraded
baseline — and checks the report names that fact in its finding and recommendation.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from chaos_mcp.criteria import parse_criterion
from chaos_mcp.engine.journal import Event
from chaos_mcp.reports.blast import blast_radius
from chaos_mcp.reports.evidence import experiment_facts
from chaos_mcp.reports.journal_view import ExperimentView, Observation
from chaos_mcp.reports.render import _markdown, view_of
from tests.reports.conftest import Ran


def edited(
    view: ExperimentView, kind: str | tuple[str, ...], change: Any, design: dict[str, Any] | None = None
) -> ExperimentView:
    """The view with `change(data)` applied to every event of `kind` (and the design updated)."""
    chosen = (kind,) if isinstance(kind, str) else kind
    events = []
    for event in view.events:
        data = copy.deepcopy(event.data)
        if event.kind in chosen:
            change(data)
        events.append(replace(event, data=data))
    new_design = view.design.model_copy(update=design or {})
    return ExperimentView.build(view.row, new_design, events, view.faults)


def kinds(facts: dict[str, Any]) -> list[str]:
    return [f["kind"] for f in facts["findings"]]


def with_cache(measurements: list[dict[str, Any]], value: float) -> None:
    measurements.append(
        {"probe": "cache", "metric": "latency_p95", "value": value, "unit": "ms", "labels": {}, "samples": 10}
    )


def test_a_target_that_moved_outside_the_declared_radius_is_an_expansion_with_its_numbers(ran: Ran) -> None:
    view = view_of(ran.engine(), ran.ids["rejected"])

    def cache_moves(data: dict[str, Any]) -> None:
        with_cache(data["measurements"], 2.0 if data.get("phase") == "baseline" else 480.0)

    facts = experiment_facts(edited(view, ("measurement", "sample"), cache_moves))
    assert facts["blast_radius"]["expansion"] == ["cache"]
    finding = next(f for f in facts["findings"] if f["kind"] == "blast_radius_expansion")
    assert (
        "latency_p95 2 → 480 ms" in finding["recommendation"] and "Isolate cache" in finding["recommendation"]
    )
    markdown = _markdown.get_template("experiment.md.j2").render(**facts)
    assert "**Blast-radius expansion:** cache" in markdown


@pytest.mark.parametrize(("stalls", "expansion"), [(1, []), (2, ["cache"])])
def test_a_latency_must_move_in_two_of_several_observations(
    ran: Ran, stalls: int, expansion: list[str]
) -> None:
    view = view_of(ran.engine(), ran.ids["rejected"])
    baseline = view.baseline()
    assert baseline is not None

    def observation(phase: str, cache_ms: float) -> Observation:
        measurements = [*baseline.measurements]
        with_cache(measurements, cache_ms)
        return Observation(at=0.0, phase=phase, source="supervisor", measurements=measurements)

    window = [observation("during", 480.0 if n < stalls else 2.0) for n in range(4)]
    stub = SimpleNamespace(
        design=view.design, baseline=lambda: observation("baseline", 2.0), window=lambda: window
    )
    assert blast_radius(stub)["expansion"] == expansion  # type: ignore[arg-type]


def test_a_target_that_barely_moved_is_not_called_affected(ran: Ran) -> None:
    view = view_of(ran.engine(), ran.ids["rejected"])

    def jitter(data: dict[str, Any]) -> None:
        with_cache(data["measurements"], 0.4 if data["phase"] == "baseline" else 0.9)

    assert experiment_facts(edited(view, "measurement", jitter))["blast_radius"]["expansion"] == []


def test_a_revert_that_failed_makes_the_experiment_failed_and_is_the_first_recommendation(ran: Ran) -> None:
    view = view_of(ran.engine(), ran.ids["rejected"])

    def fail(data: dict[str, Any]) -> None:
        data["status"] = "FAILED"
        data["steps"][0] |= {"status": "FAILED", "detail": "revert failed: TimeoutError"}

    facts = experiment_facts(edited(view, "rollback", fail))
    assert facts["status"] == "EXPERIMENT_FAILED" and facts["rollback"]["status"] == "FAILED"
    assert facts["findings"][0]["kind"] == "failed_revert" and facts["findings"][0]["severity"] == "critical"
    assert "revert failed: TimeoutError" in facts["recommendations"][0]
    assert facts["gates"]["mandatory"][0]["passed"] is False
    markdown = _markdown.get_template("experiment.md.j2").render(**facts)
    assert "### Rollback Status\nFAILED" in markdown


def test_a_recovery_over_its_criterion_is_a_recommendation_naming_both_times(ran: Ran) -> None:
    view = view_of(ran.engine(), ran.ids["rejected"])

    def slow(data: dict[str, Any]) -> None:
        data["recovery"]["recovery_time_s"] = 185.0

    facts = experiment_facts(edited(view, "rollback", slow))
    finding = next(f for f in facts["findings"] if f["kind"] == "slow_recovery")
    assert "3m 5s" in finding["recommendation"] and "recovery_time < 2 min" in finding["recommendation"]


def test_a_detection_criterion_with_no_signal_change_is_a_detection_that_never_came(ran: Ran) -> None:
    view = view_of(ran.engine(), ran.ids["rejected"])

    def flat(data: dict[str, Any]) -> None:
        for m in data["measurements"]:
            if m["metric"] == "defense_level":
                m["value"] = 1.0

    criteria = [parse_criterion("detection_time < 1 min")]
    facts = experiment_facts(edited(view, ("measurement", "sample"), flat, {"success_criteria": criteria}))
    assert facts["detection"]["detected"] is False
    assert facts["status"] == "HYPOTHESIS_REJECTED"
    finding = next(f for f in facts["findings"] if f["kind"] == "no_detection")
    assert "schedule.defense_level never signalled" in finding["recommendation"]


def test_a_baseline_that_was_not_steady_is_reported_with_what_failed(ran: Ran) -> None:
    view = view_of(ran.engine(), ran.ids["rejected"])

    def degraded(data: dict[str, Any]) -> None:
        if data["phase"] == "baseline":
            data["steady"] = False
            data["verdicts"][0] |= {"passed": False, "actual": 97.5}

    facts = experiment_facts(edited(view, "measurement", degraded, {"baseline_known_degraded": True}))
    finding = next(f for f in facts["findings"] if f["kind"] == "degraded_baseline")
    assert "actual 97.5" in finding["behavior"] and "declared known degraded" in finding["evidence"]


def test_approvals_recorded_at_injection_appear_in_the_summary_and_the_safety_gate(ran: Ran) -> None:
    view = view_of(ran.engine(), ran.ids["rejected"])
    events = [
        replace(e, data=e.data | {"approvals": ["production: approved by a person"]})
        if e.kind == "injected"
        else e
        for e in view.events
    ]
    facts = experiment_facts(ExperimentView.build(view.row, view.design, events, view.faults))
    assert "Approvals: production: approved by a person" in facts["summary"]
    assert "approved by production: approved by a person" in facts["gates"]["mandatory"][4]["evidence"]


def test_events_are_plain_journal_events() -> None:
    assert Event(1, "x", 0.0, "designed", {}).kind == "designed"
