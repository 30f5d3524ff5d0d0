"""The report builders on typed journals: verdicts only on what was measured, gates that say what they judged,
"hung" only on evidence, each line once."""

from __future__ import annotations

from typing import Any

from chaos_mcp.config import embedded_default
from chaos_mcp.contract import validate_design
from chaos_mcp.engine.journal import Event, ExperimentRow, FaultRow
from chaos_mcp.engine.measure import FULL_BUDGET
from chaos_mcp.probes.base import Measurement
from chaos_mcp.reports.evidence import CONFIRMED, FAILED, REJECTED, experiment_facts
from chaos_mcp.reports.gates import NOT_APPLICABLE
from chaos_mcp.reports.journal_view import ExperimentView
from chaos_mcp.reports.render import _markdown
from tests.helpers import valid_design

T0 = 1_800_000_000.0


def m(metric: str, value: float, unit: str = "", probe: str = "schedule", **labels: str) -> dict[str, Any]:
    return Measurement(probe, metric, value, unit, started_at=T0, ended_at=T0, labels=labels).as_dict()


def timeout(probe: str, budget: float, full: float) -> dict[str, Any]:
    """A probe_timeout as engine.measure journals it."""
    whole = budget >= full
    note = f"probe {probe} did not answer in {budget:g}s " + (
        FULL_BUDGET if whole else f"(the round's budget; its own is {full:g}s)"
    )
    return Measurement(
        probe, "probe_timeout", 1.0, "count", started_at=T0, ended_at=T0 + budget, note=note
    ).as_dict()


BASELINE = [m("coverage_pct", 100.0, "%"), m("max_utilization", 0.5)]


class Journal:
    """A typed journal of one experiment, written the way the engine writes it."""

    def __init__(self, **design: Any) -> None:
        self.design = validate_design(valid_design(**design), embedded_default())
        self.events: list[Event] = []
        self.faults = [FaultRow("f1", "exp-1", 0, {"kind": "absence"}, "reverted", T0 + 30)]

    def add(self, at: float, kind: str, **data: Any) -> Journal:
        self.events.append(Event(len(self.events) + 1, "exp-1", T0 + at, kind, data))
        return self

    def baseline(self, measurements: list[dict[str, Any]] = BASELINE) -> Journal:
        return self.add(0, "measurement", phase="baseline", taken_at=T0, steady=True, verdicts=[],
                        measurements=measurements)  # fmt: skip

    def injected(self) -> Journal:
        return self.add(1, "faults_injected", faults=["absence of Dr. A"], deadline=T0 + 31)

    def sample(self, at: float, *measurements: dict[str, Any]) -> Journal:
        return self.add(at, "sample", measurements=list(measurements), abort_checks=[])

    def rolled_back(self, integrity: dict[str, Any] | None = None) -> Journal:
        step = {"fault_id": "f1", "status": "COMPLETE", "description": "absence", "detail": "gone"}
        recovery = {"recovered": True, "recovery_time_s": 1.0, "samples": 2, "criteria": []}
        return self.add(40, "rollback", status="COMPLETE", steps=[step], recovery=recovery,
                        integrity=integrity or {"intact": True, "checked": []})  # fmt: skip

    def facts(self) -> dict[str, Any]:
        row = ExperimentRow("exp-1", "schedule", "test", self.design.scenario, "rolled_back", T0, T0 + 40,
                            self.design.model_dump(mode="json"))  # fmt: skip
        return experiment_facts(ExperimentView.build(row, self.design, self.events, self.faults))


def gate(facts: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in facts["gates"]["mandatory"] if g["gate"] == name)


def row(facts: dict[str, Any], metric: str) -> dict[str, Any]:
    return next(r for r in facts["results"] if r["metric"] == metric)


def test_a_criterion_nothing_measured_is_inconclusive_and_the_hypothesis_is_not_confirmed_on_the_rest() -> (
    None
):
    journal = Journal(success_criteria=["max_utilization < 0.8", "acgme_violations == 0"]).baseline().injected()
    for at in (2, 3, 4):
        journal.sample(at, m("coverage_pct", 95.0, "%"), m("max_utilization", 0.6))
    facts = journal.rolled_back().facts()

    unmeasured = row(facts, "acgme_violations")
    assert unmeasured["status"] == "INCONCLUSIVE" and not unmeasured["measured"] and not unmeasured["passed"]
    assert unmeasured["actual_text"] == "not measured in 3 observation(s)"
    assert row(facts, "max_utilization")["status"] == "PASS"
    assert facts["status"] == FAILED and facts["status"] != CONFIRMED
    assert "neither confirmed nor rejected" in facts["status_reason"]
    assert "acgme_violations == 0" in facts["status_reason"]
    tested = gate(facts, "Hypothesis Tested")
    assert (
        tested["status"] == "FAIL" and "declared but never measured: acgme_violations == 0" in tested["evidence"]
    )
    assert not any(
        "acgme_violations" in f["behavior"] for f in facts["findings"] if f["kind"] == "criterion_failed"
    )
    [unmeasured_finding] = [f for f in facts["findings"] if f["kind"] == "unmeasured_criterion"]
    assert unmeasured_finding["behavior"].startswith("acgme_violations == 0 was declared but nothing measured")
    assert "in 3 window observation(s)" in unmeasured_finding["evidence"]
    assert not any("expand gradually" in r for r in facts["recommendations"])

    markdown = _markdown.get_template("experiment.md.j2").render(**facts)
    [line] = [line for line in markdown.splitlines() if line.startswith("| acgme_violations")]
    assert "INCONCLUSIVE" in line and "worst of" not in line


def test_a_measured_failure_rejects_and_names_what_was_not_measured() -> None:
    journal = Journal(success_criteria=["coverage_pct >= 100%", "acgme_violations == 0"]).baseline().injected()
    facts = journal.sample(2, m("coverage_pct", 90.0, "%")).rolled_back().facts()
    assert facts["status"] == REJECTED
    assert "1 of 1 criterion measured failed: coverage_pct" in facts["status_reason"]
    assert "not measured, so not part of the verdict: acgme_violations == 0" in facts["status_reason"]
    assert row(facts, "coverage_pct")["status"] == "FAIL"


def test_every_declared_criterion_measured_and_held_confirms_and_passes_hypothesis_tested() -> None:
    journal = Journal(success_criteria=["max_utilization < 0.8"]).baseline().injected()
    facts = journal.sample(2, m("max_utilization", 0.6)).rolled_back().facts()
    assert facts["status"] == CONFIRMED
    assert gate(facts, "Hypothesis Tested")["status"] == "PASS"


def test_no_data_corruption_names_what_it_compared_or_is_not_applicable_never_a_bare_pass() -> None:
    plain = Journal(success_criteria=["max_utilization < 0.8"]).baseline([m("max_utilization", 0.5)])
    facts = plain.injected().sample(2, m("max_utilization", 0.6)).rolled_back().facts()
    verdict = gate(facts, "No Data Corruption")
    assert verdict["status"] == "N/A" and verdict["passed"] and verdict["evidence"] == NOT_APPLICABLE

    checked = {"intact": True, "checked": [{"metric": "schedule.coverage_pct", "before": 100.0,
                                            "after": 100.0, "equal": True}]}  # fmt: skip
    journal = Journal(success_criteria=["max_utilization < 0.8"]).baseline().injected()
    facts = journal.sample(2, m("max_utilization", 0.6)).rolled_back(checked).facts()
    verdict = gate(facts, "No Data Corruption")
    assert verdict["status"] == "PASS"
    assert "compared 1 integrity metric(s) of schedule" in verdict["evidence"]
    assert "equal: schedule.coverage_pct (100.0)" in verdict["evidence"]

    uncompared = Journal(success_criteria=["max_utilization < 0.8"]).baseline().injected()
    facts = uncompared.sample(2, m("max_utilization", 0.6)).rolled_back().facts()
    verdict = gate(facts, "No Data Corruption")
    assert verdict["status"] == "N/A" and "schedule.coverage_pct were not compared" in verdict["evidence"]


def test_rows_the_agent_did_not_ask_for_are_labelled_as_the_servers_own_observations() -> None:
    journal = Journal(success_criteria=["max_utilization < 0.8"]).baseline().injected()
    facts = journal.sample(2, m("max_utilization", 0.6)).rolled_back().facts()
    assert row(facts, "max_utilization")["origin"] == "declared"
    assert row(facts, "recovery_time")["origin"] == "server"
    markdown = _markdown.get_template("experiment.md.j2").render(**facts)
    assert "| recovery_time (server's own observation) |" in markdown
    assert "| max_utilization |" in markdown


def test_a_target_is_called_hung_only_after_consecutive_timeouts_with_the_probes_full_budget() -> None:
    def hung(*samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        journal = Journal(success_criteria=["max_utilization < 0.8"]).baseline().injected()
        for at, measurements in enumerate(samples, start=2):
            journal.sample(at, m("max_utilization", 0.6), *measurements)
        facts = journal.rolled_back().facts()
        return [f for f in facts["findings"] if f["kind"] == "probe_timeout"]

    ok = [m("ping_ms", 1.0, "ms", probe="cache")]
    full, cut = timeout("cache", 6.0, 6.0), timeout("cache", 0.05, 6.0)
    assert hung(ok, ok, [full], ok, ok) == [], "one full-budget timeout among answers is no evidence"
    assert hung([cut], [cut], [cut]) == [], "timeouts cut to a round's small budget are no evidence"
    assert hung([full], ok, [full]) == [], "two timeouts that are not consecutive are no evidence"
    [finding] = hung(ok, [full], [full], ok)
    assert finding["behavior"] == "the probe of cache stopped answering during the window"
    assert "2 consecutive window observations" in finding["evidence"] and "6s" in finding["evidence"]


def test_a_deadline_revert_recorded_by_the_supervisor_and_the_warden_is_one_summary_line() -> None:
    journal = Journal(success_criteria=["max_utilization < 0.8"]).baseline().injected()
    journal.sample(2, m("max_utilization", 0.6))
    journal.add(31, "auto_reverted", reason="deadline reached", steps=[])
    journal.add(32, "auto_reverted", reason="deadline reached (warden)", steps=[], by="warden")
    summary = journal.rolled_back().facts()["summary"]
    deadline = [line for line in summary if line.startswith("Deadline reached")]
    assert len(deadline) == 1 and deadline[0].endswith("(by the supervisor, warden).")


def test_blast_radius_movement_states_its_rule_and_figures() -> None:
    journal = Journal(success_criteria=["max_utilization < 0.8"]).baseline().injected()
    for at in (2, 3, 4):
        journal.sample(at, m("coverage_pct", 70.0 if at > 2 else 90.0, "%"), m("max_utilization", 0.5))
    facts = journal.rolled_back().facts()
    blast = facts["blast_radius"]
    [moved] = blast["moved"]
    [coverage] = moved["metrics"]
    assert coverage["metric"] == "coverage_pct" and coverage["beyond"] == 2 and coverage["window"] == 3
    assert coverage["margin"] == 20.0  # 20 % of a baseline of 100
    assert "more than 20% of the baseline" in blast["rule"]
    markdown = _markdown.get_template("experiment.md.j2").render(**facts)
    assert "- Rule: a metric moved when" in markdown
    assert "coverage_pct 100 → 70% (beyond ±20 in 2 of 3 observation(s))" in markdown  # 90 is within ±20
