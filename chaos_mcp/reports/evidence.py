"""From the journal to the report's facts: status, results, blast radius, findings, gates.

`experiment_facts(view)` is the one function the templates and the JSON format read; it
is pure (no I/O beyond the view it is given) and never changes the experiment's state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chaos_mcp.durations import format_duration
from chaos_mcp.engine.journal import IN_FORCE_STATUSES, Event
from chaos_mcp.reports.blast import blast_radius
from chaos_mcp.reports.findings import findings, no_finding_recommendation
from chaos_mcp.reports.gates import quality_gates
from chaos_mcp.reports.journal_view import ExperimentView
from chaos_mcp.reports.results import detection, results
from chaos_mcp.reports.timeline import timeline
from chaos_mcp.scenarios.base import scenarios

CONFIRMED, REJECTED, FAILED = "HYPOTHESIS_CONFIRMED", "HYPOTHESIS_REJECTED", "EXPERIMENT_FAILED"
REPORTABLE = ("rolled_back", "reported", "failed")


def experiment_facts(view: ExperimentView) -> dict[str, Any]:
    design = view.design
    scenario = scenarios().get(design.scenario)
    detected = detection(view)
    facts: dict[str, Any] = {
        "experiment_id": view.row.id,
        "state": view.row.state,
        "final": view.row.state in REPORTABLE or (view.row.state == "aborted" and view.rollback is not None),
        "title": f"{scenario.title if scenario else design.scenario} on {design.target_component}",
        "design": design.model_dump(mode="json"),
        "mutates_data": bool(scenario and scenario.mutates_data),
        "approvals": _approvals(view),
        "detection": detected,
        "results": results(view, detected),
        "blast_radius": blast_radius(view),
        "rollback": rollback_status(view),
        "recovered_by": [e.data.get("by", "chaos-mcp recover") for e in view.of("recovered")],
        "aborted": [e.data for e in view.of("aborted")],
        "injected": _data(view.first("faults_injected")),
        "faults": [{"id": f.id, "kind": f.record.get("kind"), "status": f.status} for f in view.faults],
        "samples": len(view.of("sample")),
        "started_at": _iso(view.started_at),
        "ended_at": _iso(view.ended_at),
    }
    facts["status"], facts["status_reason"] = status(view, facts)
    facts["duration_s"] = _duration(view)
    facts["fault_active_s"] = _active(view)
    found = findings(view, facts)
    facts["findings"] = [f.as_dict() for f in found]
    facts["unexpected"] = [f.behavior for f in found]
    facts["recommendations"] = [f"{f.recommendation} (evidence: {f.evidence})" for f in found] or [
        no_finding_recommendation(view, facts)
    ]
    facts["summary"] = execution_summary(view, facts)
    facts["gates"] = quality_gates(view, facts)
    facts["timeline"] = timeline(view)
    return facts


def status(view: ExperimentView, facts: dict[str, Any]) -> tuple[str, str]:
    """The spec's status, with the one fact that decided it."""
    failed = view.last("failed")
    withdrawn = view.last("cancelled")
    if view.row.state == "cancelled" and withdrawn is not None:
        return FAILED, f"not run: {withdrawn.data.get('reason', 'withdrawn before any injection')}"
    if view.injected_at is None or view.first("faults_injected") is None:
        error = failed.data.get("error") if failed else None
        return FAILED, f"nothing was injected{': ' + str(error) if error else ''}"
    if facts["rollback"]["status"] == "FAILED":
        return FAILED, "a fault could not be reverted (see Rollback Status)"
    interrupted = [a for a in facts["aborted"] if not a.get("evidence")]
    fired = [a for a in facts["aborted"] if a.get("evidence")]
    judged = [r for r in facts["results"] if r["criterion"] or r["source"] == "window"]
    if interrupted and not fired:
        return FAILED, f"the run was interrupted: {interrupted[0].get('reason')}"
    if fired:
        return REJECTED, str(fired[0].get("reason"))
    if not judged or not any(r["measured"] for r in judged):
        return FAILED, "no criterion could be measured while the fault was active"
    unmeasured = [r["criterion"] or r["metric"] for r in judged if not r["measured"]]
    measured = [r for r in judged if r["measured"]]
    failing = [r for r in measured if not r["passed"]]
    if failing:
        names = ", ".join(f"{r['metric']} ({r['actual_text']}, expected {r['expected']})" for r in failing)
        reason = f"{len(failing)} of {_criteria(len(measured))} measured failed: {names}"
        if unmeasured:
            reason += f"; not measured, so not part of the verdict: {', '.join(unmeasured)}"
        return REJECTED, reason
    if unmeasured:  # what held says nothing of what nobody measured: neither confirmed nor rejected
        return FAILED, (
            f"the hypothesis is neither confirmed nor rejected: {len(unmeasured)} of "
            f"{_criteria(len(judged))} went unmeasured ({', '.join(unmeasured)}); the "
            f"{len(measured)} measured held"
        )
    return CONFIRMED, f"{'the' if len(judged) == 1 else 'all'} {_criteria(len(judged))} held"


def _criteria(count: int) -> str:
    return f"{count} criterion" if count == 1 else f"{count} criteria"


def rollback_status(view: ExperimentView) -> dict[str, Any]:
    if view.rollback is not None:
        data = view.rollback
        return {
            "status": data.get("status", "FAILED"),
            "steps": data.get("steps", []),
            "recovery": data.get("recovery") or {},
            "integrity": data.get("integrity") or {},
            "note": str(data.get("note", "")),
        }
    failed = view.last("failed")
    if failed is not None and "reverted" in failed.data:
        steps = failed.data["reverted"]
        bad = any(s.get("status") == "FAILED" for s in steps)
        if all(s.get("status") == "NOT_INJECTED" for s in steps):
            return {
                "status": "COMPLETE",
                "steps": steps,
                "recovery": {},
                "integrity": {},
                "note": "nothing was injected: the fault was refused before it changed anything",
            }
        return {
            "status": "FAILED" if bad else "COMPLETE",
            "steps": steps,
            "recovery": {},
            "integrity": {},
            "note": "injection failed part-way; everything injected so far was reverted at once",
        }
    if view.injected_at is None:
        return {
            "status": "COMPLETE",
            "steps": [],
            "recovery": {},
            "integrity": {},
            "note": "nothing was injected",
        }
    active = [f.id for f in view.faults if f.status in IN_FORCE_STATUSES]
    return {
        "status": "FAILED" if active else "PARTIAL",
        "steps": [],
        "recovery": {},
        "integrity": {},
        "note": "rollback was never run"
        + (f"; still active: {', '.join(active)}" if active else "; faults reverted, recovery not measured"),
    }


def execution_summary(view: ExperimentView, facts: dict[str, Any]) -> list[str]:
    design, lines = view.design, []
    lines.append(
        f"Designed {design.scenario} on {design.target_component} ({design.environment}) for "
        f"{format_duration(design.duration_s)}; blast radius: {design.blast_radius.scope}."
    )
    baseline = view.baseline_event()
    if baseline is not None:
        verdicts = baseline.get("verdicts", [])
        steady = "steady" if baseline.get("steady") else "NOT steady"
        known = " (declared known degraded)" if design.baseline_known_degraded else ""
        lines.append(
            f"Baseline {steady}{known}: " + ", ".join(f"{v['criterion']} → {v['actual']}" for v in verdicts)
        )
    for refused in view.of("injection_refused"):
        lines.append(f"Injection refused at {_hms(refused.ts)}: {refused.data.get('reason')}")
    if facts["approvals"]:
        lines.append("Approvals: " + ", ".join(str(a) for a in facts["approvals"]))
    injected = facts["injected"]
    if injected:
        lines.append(
            f"Injected at {_hms(view.injected_at or 0)}: {'; '.join(injected.get('faults', []))} "
            f"(deadline {_hms(float(injected.get('deadline', 0)))})."
        )
    during = [o for o in view.window() if o.source == "measure_steady_state"]
    lines.append(
        f"Observed the window: {facts['samples']} supervisor sample(s), {len(during)} during measurement(s)."
    )
    lines.extend(schedule_lines(view))
    observed = view.of("observation")
    if observed:  # each measurement during the window observes again: the latest says what the system did
        suffix = f" (the latest of {len(observed)} observations)" if len(observed) > 1 else ""
        lines.extend(line.removesuffix(".") + suffix + "." for line in observation_lines(observed[-1].data))
    for event in view.of("aborted"):
        after = "the faults were already reverted" if event.data.get("phase") == "recovery" else None
        lines.append(
            f"Aborted at {_hms(event.ts)}: {event.data.get('reason')}; {after or 'faults reverted at once'}."
        )
    deadline = view.first("auto_reverted")  # the supervisor and the warden may both record it
    if deadline is not None:
        by = {str(e.data.get("by") or "the supervisor") for e in view.of("auto_reverted")}
        lines.append(
            f"Deadline reached at {_hms(deadline.ts)}: faults reverted automatically "
            f"(by {', '.join(sorted(by))})."
        )
    for by in facts["recovered_by"]:
        lines.append(f"Faults reverted after a server crash by `{by}`.")
    failed = view.last("failed")
    if failed is not None and failed.data.get("error"):
        lines.append(f"Failed at {_hms(failed.ts)}: {failed.data['error']}")
    rollback, rolled = facts["rollback"], view.last("rollback")
    if rolled is not None:
        recovery = rollback["recovery"]
        back = (
            f"steady state back after {format_duration(recovery['recovery_time_s'])}"
            if recovery.get("recovered")
            else recovery.get("why", "recovery not measured")
        )
        lines.append(f"Rolled back at {_hms(rolled.ts)}: {rollback['status']}; {back}.")
    return lines


LEVELS = ("GREEN", "YELLOW", "ORANGE", "RED", "BLACK")
SCHEDULE_METRICS = (
    ("coverage_pct", "coverage", "{:.2f}%"),
    ("max_utilization", "max utilization of the remaining faculty", "{:.2f}"),
    ("acgme_violations", "ACGME violations", "{:.0f}"),
    ("defense_level", "defense level", "level"),
)


def schedule_lines(view: ExperimentView) -> list[str]:
    """Before/during of a schedule target: coverage, utilization, ACGME compliance, defense level."""
    design = view.design
    baseline, window = view.baseline(), view.window()
    if design.target_kind != "schedule" or baseline is None or not window:
        return []
    during = window[-1]
    parts = []
    for metric, label, form in SCHEDULE_METRICS:
        before = baseline.value(design.target_component, metric)
        after = during.value(design.target_component, metric)
        if before is None or after is None:
            continue
        show = (lambda v: LEVELS[min(int(v), 4)]) if form == "level" else form.format
        parts.append(f"{label} {show(before)} → {show(after)}")
    return [f"Schedule before → during the fault: {'; '.join(parts)}."] if parts else []


def observation_lines(data: dict[str, Any]) -> list[str]:
    """What the system under test did about the fault (the scenario's observation)."""
    lines = []
    repair = data.get("suggested_repair")
    if isinstance(repair, dict):
        examples = ", ".join(
            f"{a.get('name', a.get('faculty_id'))} → {a.get('service')} {a.get('when')}"
            for a in repair.get("assignments", [])[:3]
        )
        lines.append(
            f"Suggested coverage ({repair.get('status')}): {repair.get('changes', 0)} reassignment(s) "
            f"take the gaps from {repair.get('uncovered_before')} to {repair.get('uncovered_after')} "
            f"slot(s) in {repair.get('solve_time_s')}s"
            + (f", e.g. {examples}" if examples else "")
            + (f"; {'; '.join(repair.get('reasons', []))}" if repair.get("reasons") else "")
            + "."
        )
    validation = data.get("validation")
    if isinstance(validation, dict):
        conflicts = validation.get("conflicts", [])
        named = "; ".join(str(c.get("message", c)) for c in conflicts[:3]) if conflicts else "none"
        lines.append(f"Validation named {len(conflicts)} conflict(s): {named}.")
    if "error" in data:
        lines.append(f"The scenario's observation failed: {data['error']}.")
    return lines


def _data(event: Event | None) -> dict[str, Any] | None:
    return event.data if event is not None else None


def _approvals(view: ExperimentView) -> list[Any]:
    event = view.first("injected")
    return list(event.data.get("approvals") or []) if event else []


def _duration(view: ExperimentView) -> float:
    start = view.injected_at or view.started_at
    end_event = view.last("rollback") or view.last("failed")
    end = end_event.ts if end_event else view.ended_at
    return max(0.0, end - start)


def _active(view: ExperimentView) -> float | None:
    if view.injected_at is None or view.reverted_at is None:
        return None
    return max(0.0, view.reverted_at - view.injected_at)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")
