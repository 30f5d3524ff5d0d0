"""Export chaos-mcp experiments to Chaos Toolkit: the experiment file and the run's journal.

    export_experiment(design)          a Chaos Toolkit experiment (passes `chaos validate`)
    export_journal(view)               the run, as a Chaos Toolkit journal

The experiment mirrors chaos-mcp's protocol: the steady-state hypothesis is the steady-state
criteria (probe + tolerance per criterion); the method injects the scenario, records the
success criteria's metrics during the window and rolls back (which measures recovery); the
rollbacks roll back again, which is a no-op when nothing is left active. The activities are
python providers in `chaos_mcp.interop.activities`.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import Any

from chaos_mcp import __version__
from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.criteria import Criterion, parse_criterion
from chaos_mcp.probes.tolerance import convert
from chaos_mcp.reports.evidence import experiment_facts
from chaos_mcp.reports.journal_view import ExperimentView, Observation
from chaos_mcp.reports.results import measurements_of

ACTIVITIES = "chaos_mcp.interop.activities"
DERIVED = ("recovery_time", "detection_time")
DEFAULTS = {
    "http": ["latency_p95 < 200ms", "error_rate < 0.1%", "healthy == 1"],
    "postgres": ["latency_p95 < 200ms", "error_rate < 0.1%"],
    "redis": ["latency_p95 < 200ms", "error_rate < 0.1%"],
    "tcp": ["connect_time_p95 < 200ms", "error_rate < 0.1%"],
    "schedule": ["coverage_pct >= 100%"],
}


def design_input(design: ExperimentDesign) -> dict[str, Any]:
    """The design as design_experiment's input again (what `start_experiment` is given)."""
    raw: dict[str, Any] = {
        "experiment_type": design.experiment_type,
        "target_component": design.target_component,
        "hypothesis": design.hypothesis,
        "environment": design.environment,
        "blast_radius": design.blast_radius.model_dump(mode="json", exclude_none=True),
        "duration": design.duration_s,
        "rollback_plan": list(design.rollback_plan),
        "scenario": design.scenario,
        "parameters": {k: v for k, v in design.parameters.items() if v is not None},
        "success_criteria": [c.text() for c in design.success_criteria],
        "abort_conditions": [c.text() for c in design.abort_conditions],
        "steady_state": [c.text() for c in design.steady_state],
        "baseline_known_degraded": design.baseline_known_degraded,
    }
    if design.system_state is not None:
        raw["system_state"] = design.system_state
    return {k: v for k, v in raw.items() if v not in ([], {})}


def steady_criteria(design: ExperimentDesign) -> list[Criterion]:
    return list(design.steady_state) or [parse_criterion(t) for t in DEFAULTS.get(design.target_kind, [])]


def _split(criterion: Criterion, default_target: str) -> tuple[str, str]:
    target, _, metric = criterion.metric.rpartition(".")
    return target or criterion.measured_by or default_target, metric


def _probe(criterion: Criterion, design: ExperimentDesign, with_tolerance: bool) -> dict[str, Any]:
    target, metric = _split(criterion, design.target_component)
    probe: dict[str, Any] = {
        "type": "probe",
        "name": f"{target}.{metric} ({criterion.text()})",
        "provider": {
            "type": "python",
            "module": ACTIVITIES,
            "func": "metric_value",
            "arguments": {"target": target, "metric": metric, "unit": criterion.unit},
        },
    }
    if with_tolerance:
        probe["tolerance"] = {
            "type": "probe",
            "name": f"{criterion.op} {criterion.threshold:g}{criterion.unit}",
            "provider": {
                "type": "python",
                "module": ACTIVITIES,
                "func": "compare",
                "arguments": {"op": criterion.op, "threshold": criterion.threshold},
            },
        }
    return probe


def _action(
    name: str, func: str, arguments: dict[str, Any], pause_after: float | None = None
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "action",
        "name": name,
        "provider": {"type": "python", "module": ACTIVITIES, "func": func, "arguments": arguments},
    }
    if pause_after:
        action["pauses"] = {"after": pause_after}
    return action


def window_criteria(design: ExperimentDesign) -> list[Criterion]:
    return [c for c in design.success_criteria if c.metric.rpartition(".")[2] not in DERIVED]


def export_experiment(design: ExperimentDesign, experiment_id: str | None = None) -> dict[str, Any]:
    target = design.target_component
    observe = max(1.0, min(design.duration_s / 2, 60.0))
    return {
        "version": "1.0.0",
        "title": f"{design.scenario} on {target} ({design.environment})",
        "description": f"{design.hypothesis} Blast radius: {design.blast_radius.scope}.",
        "tags": list(
            dict.fromkeys(["chaos-mcp", design.experiment_type, design.scenario, target, design.environment])
        ),
        "configuration": {"chaos_mcp_config": {"type": "env", "key": "CHAOS_MCP_CONFIG", "default": ""}},
        "steady-state-hypothesis": {
            "title": design.hypothesis,
            "probes": [_probe(c, design, with_tolerance=True) for c in steady_criteria(design)],
        },
        "method": [
            _action(
                f"inject {design.scenario} into {target}",
                "start_experiment",
                {"design": design_input(design)},
                pause_after=observe,
            ),
            *(_probe(c, design, with_tolerance=False) for c in window_criteria(design)),
            _action(f"roll back {target} and measure recovery", "rollback_target", {"target": target}),
        ],
        "rollbacks": [
            _action(f"ensure nothing is left injected on {target}", "rollback_target", {"target": target})
        ],
        "extensions": [
            {
                "name": "chaos-mcp",
                "version": __version__,
                "experiment_id": experiment_id,
                "rollback_plan": list(design.rollback_plan),
                "abort_conditions": [c.text() for c in design.abort_conditions],
                "success_criteria": [c.text() for c in design.success_criteria],
                "duration_s": design.duration_s,
            }
        ],
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _value(criterion: Criterion, observation: Observation) -> float | None:
    """The criterion's metric in this observation, in the criterion's unit (None when not measured)."""
    probe, _, metric = criterion.metric.rpartition(".")
    for m in measurements_of(observation):
        if m.metric == metric and (not probe or m.probe == probe) and not m.labels:
            return convert(m.value, m.unit, criterion.unit, criterion.metric)
    return None


def _run(
    activity: dict[str, Any], at: float, output: Any, ok: bool, end: float | None = None
) -> dict[str, Any]:
    run: dict[str, Any] = {
        "activity": activity,
        "output": output,
        "status": "succeeded" if ok else "failed",
        "start": _iso(at),
        "end": _iso(end or at),
        "duration": max(0.0, (end or at) - at),
    }
    return run


def _steady(
    probes: list[dict[str, Any]], criteria: list[Criterion], observation: Observation | None
) -> dict[str, Any]:
    if observation is None:
        return {"steady_state_met": None, "probes": []}
    runs = []
    for probe, criterion in zip(probes, criteria, strict=True):
        value = _value(criterion, observation)
        met = value is not None and criterion.holds(value)
        runs.append(_run(probe, observation.at, value, value is not None) | {"tolerance_met": met})
    return {"steady_state_met": all(r["tolerance_met"] for r in runs), "probes": runs}


def export_journal(view: ExperimentView) -> dict[str, Any]:
    """The run, as a Chaos Toolkit journal (steady states before/after, method runs, rollbacks)."""
    design = view.design
    experiment = export_experiment(design, view.row.id)
    facts = experiment_facts(view)
    probes = experiment["steady-state-hypothesis"]["probes"]
    criteria = steady_criteria(design)
    inject, *window_probes, rollback = experiment["method"]
    runs: list[dict[str, Any]] = []
    if view.injected_at is not None:
        runs.append(_run(inject, view.injected_at, facts["injected"], True))
    window = view.window()
    for probe, criterion in zip(window_probes, window_criteria(design), strict=True):
        for observation in window:
            value = _value(criterion, observation)
            runs.append(_run(probe, observation.at, value, value is not None))
    rollback_event = view.last("rollback")
    if rollback_event is not None:
        data = rollback_event.data
        runs.append(
            _run(
                rollback,
                view.reverted_at or rollback_event.ts,
                {k: data.get(k) for k in ("status", "steps", "recovery")},
                data.get("status") != "FAILED",
                rollback_event.ts,
            )
        )
    recovery = view.phase("recovery")
    after = (
        _steady(probes, criteria, recovery[-1])
        if recovery
        else {
            "steady_state_met": (facts["rollback"].get("recovery") or {}).get("recovered"),
            "probes": [],
        }
    )
    return {
        "chaoslib-version": None,
        "platform": platform.platform(),
        "node": platform.node(),
        "experiment": experiment,
        "start": _iso(view.started_at),
        "end": _iso(view.ended_at),
        "duration": view.ended_at - view.started_at,
        "status": _status(facts),
        "deviated": facts["status"] == "HYPOTHESIS_REJECTED",
        "steady_states": {"before": _steady(probes, criteria, view.baseline()), "after": after, "during": []},
        "run": runs,
        "rollbacks": [],
        "extensions": [
            {
                "name": "chaos-mcp",
                "experiment_id": view.row.id,
                "status": facts["status"],
                "status_reason": facts["status_reason"],
                "rollback_status": facts["rollback"]["status"],
                "recommendations": facts["recommendations"],
            }
        ],
    }


def _status(facts: dict[str, Any]) -> str:
    if any(a.get("evidence") for a in facts["aborted"]):
        return "aborted"
    if facts["aborted"] or facts["recovered_by"]:
        return "interrupted"
    return "failed" if facts["status"] == "EXPERIMENT_FAILED" else "completed"
