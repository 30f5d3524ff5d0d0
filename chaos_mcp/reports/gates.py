"""The spec's quality gates, each judged from the journal with the evidence it rests on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaos_mcp.durations import format_duration
from chaos_mcp.engine.journal import IN_FORCE_STATUSES
from chaos_mcp.engine.recovery import INTEGRITY_METRICS
from chaos_mcp.reports.journal_view import ExperimentView

Gate = Callable[[ExperimentView, dict[str, Any]], tuple[bool, str]]


def _gate(name: str, check: str, passed: bool, evidence: str, mandatory: bool) -> dict[str, Any]:
    """A gate with nothing to judge is "N/A" (it does not block), never a bare PASS over nothing."""
    return {
        "gate": name,
        "check": check,
        "mandatory": mandatory,
        "passed": passed,
        "status": ("N/A" if evidence.startswith("not applicable") else "PASS") if passed else "FAIL",
        "evidence": evidence,
    }


def rollback_complete(view: ExperimentView, facts: dict[str, Any]) -> tuple[bool, str]:
    rollback = facts["rollback"]
    steps = rollback["steps"]
    ok = [s for s in steps if s.get("status") == "COMPLETE"]
    recovery = rollback.get("recovery") or {}
    if steps and all(s.get("status") == "NOT_INJECTED" for s in steps):
        return rollback["status"] == "COMPLETE", "nothing was injected (refused before any change)"
    text = f"{len(ok)}/{len(steps)} fault(s) reverted and verified gone"
    if recovery.get("recovered"):
        text += f"; steady state back {format_duration(recovery['recovery_time_s'])} after the revert"
    elif recovery:
        text += f"; {recovery.get('why', 'steady state not back')}"
    return rollback["status"] == "COMPLETE", text


def no_data_corruption(view: ExperimentView, facts: dict[str, Any]) -> tuple[bool, str]:
    integrity = (view.rollback or {}).get("integrity") or {}
    checked = integrity.get("checked", [])
    if checked:
        same = [f"{c['metric']} ({c['before']})" for c in checked if c.get("equal")]
        differ = [f"{c['metric']} {c['before']} → {c['after']}" for c in checked if not c.get("equal")]
        text = (
            f"compared {len(checked)} integrity metric(s) of {view.design.target_component} after the "
            f"rollback with the baseline; equal: {', '.join(same) or 'none'}"
        )
        return not differ, text + (f"; differ: {', '.join(differ)}" if differ else "")
    if facts["mutates_data"]:
        return False, "the scenario modifies data but no integrity metric was compared"
    baseline = view.baseline()
    target = view.design.target_component
    exist = sorted(
        {
            f"{m['probe']}.{m['metric']}"
            for m in (baseline.measurements if baseline else [])
            if m["probe"] == target and m["metric"] in INTEGRITY_METRICS and not m["labels"]
        }
    )
    if exist:
        why = integrity.get("note") or "the rollback did not compare them"
        return True, (
            f"not applicable: the scenario changes no data; {', '.join(exist)} were not compared ({why})"
        )
    return True, NOT_APPLICABLE


NOT_APPLICABLE = "not applicable: the scenario changes no data and no integrity metric exists for this target"


def hypothesis_tested(view: ExperimentView, facts: dict[str, Any]) -> tuple[bool, str]:
    rows = facts["results"]
    declared = [r for r in rows if r.get("origin") in ("declared", "steady_state")]  # the agent's own
    unmeasured = [r["criterion"] or r["metric"] for r in declared if not r["measured"]]
    judged = [r for r in rows if r["measured"]]
    text = (
        f"{len(judged)}/{len(rows)} result row(s) measured over {len(view.window())} window "
        f"observation(s); status {facts['status']}"
    )
    if unmeasured:
        text += f"; declared but never measured: {', '.join(unmeasured)}"
    return facts["status"] != "EXPERIMENT_FAILED" and not unmeasured, text


def blast_radius_measured(view: ExperimentView, facts: dict[str, Any]) -> tuple[bool, str]:
    blast = facts["blast_radius"]
    if not blast["measured"]:
        return False, blast.get("note", "not measured")
    moved = ", ".join(m["target"] for m in blast["moved"]) or "none"
    text = (
        f"{len(blast.get('compared', []))} target(s) compared with the baseline over {blast['observations']} "
        f"observation(s); moved: {moved}"
    )
    if blast["expansion"]:
        text += f"; expansion beyond the declared radius: {', '.join(blast['expansion'])}"
    return True, text


def safety_observed(view: ExperimentView, facts: dict[str, Any]) -> tuple[bool, str]:
    environment = view.design.environment
    approvals = facts["approvals"]
    active = [f.id for f in view.faults if f.status in IN_FORCE_STATUSES]
    late = []
    reverted_at = view.reverted_at
    deadlines = [f.deadline for f in view.faults]
    if reverted_at is not None and deadlines and reverted_at > max(deadlines) + 5.0:
        late.append(f"reverted {reverted_at - max(deadlines):.1f}s after the deadline")
    parts = [f"environment {environment}"]
    if approvals:
        parts.append("approved by " + ", ".join(str(a) for a in approvals))
    parts.append(f"faults still in force: {', '.join(active) or 'none'}")
    parts += late
    production_ok = environment != "production" or bool(approvals)
    return production_ok and not active and not late, "; ".join(parts)


def repeatability(view: ExperimentView, facts: dict[str, Any]) -> tuple[bool, str]:
    ok = facts["rollback"]["status"] == "COMPLETE"
    return ok, (
        f"the full design is journaled (scenario {view.design.scenario}, parameters "
        f"{parameters_text(view.design.parameters)}) and can be passed to design_experiment again; "
        + ("the system is back at its baseline" if ok else "but the system is not back at its baseline")
    )


def parameters_text(parameters: dict[str, Any]) -> str:
    given = {k: v for k, v in parameters.items() if v is not None}
    return ", ".join(f"{k}={v}" for k, v in given.items()) or "the scenario's defaults"


def automation_ready(view: ExperimentView, facts: dict[str, Any]) -> tuple[bool, str]:
    machine = [r for r in facts["results"] if r["criterion"]]
    ok = bool(machine) and bool(view.design.abort_conditions or view.design.duration_s)
    return ok, (
        f"{len(machine)} machine-checkable success criteria, "
        f"{len(view.design.abort_conditions)} stop condition(s), automatic revert at the deadline; "
        "exportable as a Chaos Toolkit experiment (chaos_mcp.interop.chaostoolkit)"
        + ("" if machine else "; add success_criteria to judge it without a person")
    )


def monitoring_captured(view: ExperimentView, facts: dict[str, Any]) -> tuple[bool, str]:
    samples = len(view.of("sample"))
    measurements = len(view.of("measurement"))
    return samples + len(view.phase("during")) > 0, (
        f"{samples} supervisor sample(s) and {measurements} steady-state measurement(s) in the journal"
    )


MANDATORY: tuple[tuple[str, str, Gate], ...] = (
    ("Rollback Complete", "System returned to steady state", rollback_complete),
    ("No Data Corruption", "Test data integrity preserved", no_data_corruption),
    ("Hypothesis Tested", "Experiment addressed hypothesis", hypothesis_tested),
    ("Blast Radius Measured", "Impact scope documented", blast_radius_measured),
    ("Safety Observed", "No production impact", safety_observed),
)
OPTIONAL: tuple[tuple[str, str, Gate], ...] = (
    ("Repeatability", "Experiment can be run again with same setup", repeatability),
    ("Automation Ready", "Experiment could be automated in CI/CD", automation_ready),
    ("Monitoring Captured", "Metrics collected during experiment", monitoring_captured),
)


def quality_gates(view: ExperimentView, facts: dict[str, Any]) -> dict[str, Any]:
    mandatory = [_gate(n, c, *gate(view, facts), mandatory=True) for n, c, gate in MANDATORY]
    optional = [_gate(n, c, *gate(view, facts), mandatory=False) for n, c, gate in OPTIONAL]
    return {
        "mandatory": mandatory,
        "optional": optional,
        "mandatory_passed": all(g["passed"] for g in mandatory),
    }
