"""The experiment report against real experiments' journals: the spec's format and its evidence."""

from __future__ import annotations

import json
import re

import pytest

from chaos_mcp.engine.errors import EngineError
from chaos_mcp.engine.lifecycle import OutOfOrder
from chaos_mcp.reports.render import experiment_report, generate_report
from tests.reports.conftest import Ran

HEADINGS = [
    "## Chaos Experiment Report: ",
    "**Status:** ",
    "**Duration:** ",
    "**Environment:** ",
    "### Hypothesis",
    "### Execution Summary",
    "### Results",
    "| Metric | Expected | Actual | Pass/Fail |",
    "### Unexpected Behaviors",
    "### Recommendations",
    "### Blast Radius Measured",
    "### Rollback Status",
    "### Quality Gates",
]
STATUSES = {"HYPOTHESIS_CONFIRMED", "HYPOTHESIS_REJECTED", "EXPERIMENT_FAILED"}
RUN = ["rejected", "confirmed", "aborted", "detected", "crashed"]


def report(ran: Ran, name: str, fmt: str = "markdown") -> dict[str, object]:
    return experiment_report(ran.engine(), ran.ids[name], fmt)


def section(markdown: str, heading: str) -> str:
    after = markdown.split(heading, 1)[1]
    return after.split("\n### ", 1)[0]


def results_table(markdown: str) -> dict[str, list[str]]:
    rows = {}
    for line in section(markdown, "### Results").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("Metric", "--------"):
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.parametrize("name", RUN)
def test_every_report_has_the_spec_headings_in_the_spec_order(ran: Ran, name: str) -> None:
    markdown = str(report(ran, name)["markdown"])
    positions = [markdown.index(h) for h in HEADINGS]
    assert positions == sorted(positions), markdown
    status = re.search(r"^\*\*Status:\*\* (\S+)$", markdown, re.M)
    assert status and status.group(1) in STATUSES
    rollback = section(markdown, "### Rollback Status").strip().splitlines()[0]
    assert rollback.split()[0] in ("COMPLETE", "PARTIAL", "FAILED")
    assert all(cells[2] in ("PASS", "FAIL", "INCONCLUSIVE") for cells in results_table(markdown).values())


def test_a_coverage_gap_under_n1_rejects_the_hypothesis_with_the_measured_value(ran: Ran) -> None:
    result = report(ran, "rejected")
    markdown = str(result["markdown"])
    assert result["status"] == "HYPOTHESIS_REJECTED"
    table = results_table(markdown)
    expected, actual, verdict = table["coverage_pct"]
    assert expected == ">= 100%" and verdict == "FAIL"
    assert float(actual.split("%")[0]) < 100
    assert table["max_utilization"][2] == "PASS"
    assert table["recovery_time"][0] == "< 2 min" and table["recovery_time"][2] == "PASS"
    assert "coverage_pct" in section(markdown, "### Unexpected Behaviors")
    assert "evidence: success criterion 'coverage_pct >= 100%'" in section(markdown, "### Recommendations")


def test_criteria_that_hold_across_every_supervisor_sample_confirm_the_hypothesis(ran: Ran) -> None:
    result = report(ran, "confirmed")
    markdown = str(result["markdown"])
    assert result["status"] == "HYPOTHESIS_CONFIRMED"
    _, actual, verdict = results_table(markdown)["max_utilization"]
    assert verdict == "PASS" and "worst of" in actual, "judged on every sample of the window"
    assert "Deadline reached" in section(markdown, "### Execution Summary")
    assert "None observed" in section(markdown, "### Unexpected Behaviors")
    assert section(markdown, "### Rollback Status").strip().startswith("COMPLETE")


def test_an_abort_condition_that_fired_rejects_the_hypothesis_and_is_a_recommendation(ran: Ran) -> None:
    result = report(ran, "aborted", "json")
    markdown = str(result["markdown"])
    assert result["status"] == "HYPOTHESIS_REJECTED"
    assert "abort condition held: coverage_pct < 99%" in section(markdown, "### Execution Summary")
    recommendations = section(markdown, "### Recommendations")
    assert "crossed a stop condition" in recommendations and "supervisor sample at" in recommendations
    facts = result["json"]
    assert isinstance(facts, dict)
    assert facts["findings"][0]["kind"] == "abort_condition"


def test_detection_time_is_measured_from_injection_to_the_declared_detection_signal(ran: Ran) -> None:
    result = report(ran, "detected", "json")
    facts = result["json"]
    assert isinstance(facts, dict)
    detection = facts["detection"]
    assert detection["detected"] is True and detection["declared"] is True
    assert "defense_level >= 2" in detection["signal"], detection
    row = results_table(str(result["markdown"]))["detection_time"]
    assert row[0] == "< 1 min" and row[2] == "PASS"
    assert detection["detection_time_s"] < 60


def test_without_declared_signals_detection_is_the_first_change_of_a_signal_metric(ran: Ran) -> None:
    facts = report(ran, "rejected", "json")["json"]
    assert isinstance(facts, dict)
    assert facts["detection"]["declared"] is False
    assert facts["detection"]["signal"].startswith("schedule.defense_level 1 → ")
    row = results_table(str(report(ran, "rejected")["markdown"]))["detection_time (server's own observation)"]
    assert row[0] == "a signal change (no criterion given)" and row[2] == "PASS"


def test_an_experiment_cut_short_by_a_crash_failed_and_says_chaos_mcp_recover_reverted_it(ran: Ran) -> None:
    result = report(ran, "crashed")
    markdown = str(result["markdown"])
    assert result["status"] == "EXPERIMENT_FAILED"
    assert "chaos-mcp recover" in section(markdown, "### Execution Summary")
    assert "chaos-mcp recover" in section(markdown, "### Rollback Status")
    assert "'recovered' event" in section(markdown, "### Recommendations")
    gates = section(markdown, "### Quality Gates")
    assert re.search(r"\| Hypothesis Tested \| MUST \| .* \| FAIL \|", gates)


@pytest.mark.parametrize("name", RUN)
def test_every_recommendation_names_the_evidence_it_rests_on(ran: Ran, name: str) -> None:
    facts = report(ran, name, "json")["json"]
    assert isinstance(facts, dict)
    for finding in facts["findings"]:
        assert finding["evidence"] and finding["evidence"] in " ".join(facts["recommendations"])
    if not facts["findings"]:
        assert "held (" in facts["recommendations"][0], "the next step names what held"


def test_the_quality_gates_list_every_mandatory_and_optional_gate_with_evidence(ran: Ran) -> None:
    facts = report(ran, "rejected", "json")["json"]
    assert isinstance(facts, dict)
    gates = facts["gates"]
    assert [g["gate"] for g in gates["mandatory"]] == [
        "Rollback Complete",
        "No Data Corruption",
        "Hypothesis Tested",
        "Blast Radius Measured",
        "Safety Observed",
    ]
    assert [g["gate"] for g in gates["optional"]] == [
        "Repeatability",
        "Automation Ready",
        "Monitoring Captured",
    ]
    assert all(
        g["evidence"] and g["status"] in ("PASS", "FAIL") for g in gates["mandatory"] + gates["optional"]
    )
    assert gates["mandatory_passed"] is True
    integrity = gates["mandatory"][1]["evidence"]
    assert "schedule.coverage_pct" in integrity, "the data-integrity gate names what it compared"


def test_the_json_format_is_plain_json_with_the_same_status_and_results(ran: Ran) -> None:
    result = report(ran, "rejected", "json")
    facts = result["json"]
    assert isinstance(facts, dict)
    assert json.loads(json.dumps(facts)) == facts
    assert facts["status"] == result["status"]
    assert {r["metric"] for r in facts["results"]} >= {"coverage_pct", "max_utilization", "recovery_time"}
    assert facts["blast_radius"]["moved"][0]["target"] == "schedule"
    assert facts["timeline"]["series"], "the timeline carries the probe series"


def test_generate_report_moves_a_rolled_back_experiment_to_reported_and_can_be_repeated(ran: Ran) -> None:
    engine = ran.engine()
    experiment_id = ran.ids["confirmed"]
    first = generate_report(engine, experiment_id, None, None, "markdown")
    row = engine.journal.get_experiment(experiment_id)
    assert row is not None and row.state == "reported"
    again = generate_report(engine, experiment_id, None, None, "markdown")
    assert again["status"] == first["status"] == "HYPOTHESIS_CONFIRMED"
    assert [e.data["status"] for e in engine.journal.events(experiment_id, ["reported"])] == [first["status"]]


def test_a_report_of_an_experiment_not_yet_run_is_refused_with_the_next_tool(ran: Ran) -> None:
    with pytest.raises(OutOfOrder, match="measure_steady_state"):
        generate_report(ran.engine(), ran.ids["designed_only"], None, None, "markdown")


def test_an_unknown_format_or_missing_id_and_period_are_refused_with_what_is_accepted(ran: Ran) -> None:
    with pytest.raises(EngineError, match="markdown, json, html"):
        experiment_report(ran.engine(), ran.ids["rejected"], "pdf")
    with pytest.raises(EngineError, match=r"experiment_id .* or since"):
        generate_report(ran.engine(), None, None, None, "markdown")
