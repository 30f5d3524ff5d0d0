"""The timeline of an experiment: probe series across baseline, injection, rollback, recovery.

`timeline(view)` gives plain data (for JSON); `chaos_mcp.reports.svg.render_svg` draws it.
Series are the metrics the criteria name (success, stop, steady state) and the metrics that
moved; times are seconds from the experiment's first event.
"""

from __future__ import annotations

from typing import Any

from chaos_mcp.criteria import Criterion
from chaos_mcp.reports.blast import blast_radius
from chaos_mcp.reports.journal_view import ExperimentView

MAX_SERIES = 6


def _key(criterion: Criterion, default_probe: str) -> tuple[str, str]:
    probe, _, metric = criterion.metric.rpartition(".")
    return probe or default_probe, metric


def _wanted(
    view: ExperimentView,
) -> tuple[list[tuple[str, str]], dict[tuple[str, str], list[dict[str, Any]]]]:
    design, target = view.design, view.design.target_component
    keys: list[tuple[str, str]] = []
    thresholds: dict[tuple[str, str], list[dict[str, Any]]] = {}
    named = [
        *(("success", c) for c in design.success_criteria),
        *(("abort", c) for c in design.abort_conditions),
        *(("steady", c) for c in design.steady_state),
        *(("detection", c) for c in design.detection_signals),
    ]
    baseline = view.baseline_event()
    if not design.steady_state and baseline:
        from chaos_mcp.criteria import parse_criterion

        named += [("steady", parse_criterion(v["criterion"])) for v in baseline.get("verdicts", [])]
    for role, criterion in named:
        key = _key(criterion, target)
        if key[1] in ("recovery_time", "detection_time"):
            continue
        keys.append(key)
        thresholds.setdefault(key, []).append(
            {
                "role": role,
                "op": criterion.op,
                "value": criterion.threshold,
                "unit": criterion.unit,
                "text": criterion.text(),
            }
        )
    for moved in blast_radius(view)["moved"]:
        keys += [(moved["target"], m["metric"]) for m in moved["metrics"]]
    return list(dict.fromkeys(keys)), thresholds


def timeline(view: ExperimentView) -> dict[str, Any]:
    t0 = view.started_at
    observations = view.observations()
    keys, thresholds = _wanted(view)
    series = []
    for probe, metric in keys:
        points, unit = [], ""
        for o in observations:
            for m in o.measurements:
                if m["probe"] == probe and m["metric"] == metric and not m["labels"]:
                    points.append([round(o.at - t0, 3), float(m["value"]), o.phase])
                    unit = str(m["unit"])
        if points:
            series.append(
                {
                    "name": f"{probe}.{metric}",
                    "unit": unit,
                    "points": points,
                    "thresholds": [t for t in thresholds.get((probe, metric), []) if _same_unit(t, unit)],
                }
            )
    return {
        "t0": t0,
        "end": round(view.ended_at - t0, 3),
        "phases": _phases(view, t0),
        "events": _events(view, t0),
        "series": series[:MAX_SERIES],
    }


def _same_unit(threshold: dict[str, Any], unit: str) -> bool:
    return threshold["unit"] in ("", unit) or (threshold["unit"], unit) in (("%", "%"),)


def _phases(view: ExperimentView, t0: float) -> list[dict[str, Any]]:
    phases: list[dict[str, Any]] = []
    baseline = view.phase("baseline")
    injected, reverted = view.injected_at, view.reverted_at
    rollback = view.last("rollback")
    if baseline:
        phases.append({"name": "baseline", "start": 0.0, "end": round((injected or baseline[-1].at) - t0, 3)})
    if injected is not None:
        end = reverted or (rollback.ts if rollback else view.ended_at)
        phases.append({"name": "injected", "start": round(injected - t0, 3), "end": round(end - t0, 3)})
    if reverted is not None and rollback is not None:
        phases.append(
            {"name": "recovery", "start": round(reverted - t0, 3), "end": round(rollback.ts - t0, 3)}
        )
    return phases


def _events(view: ExperimentView, t0: float) -> list[dict[str, Any]]:
    labels = {
        "faults_injected": "injected",
        "detected": "detected",
        "aborted": "aborted",
        "auto_reverted": "deadline revert",
        "rollback": "rollback",
        "recovered": "recovered after crash",
    }
    found = [
        {"t": round(e.ts - t0, 3), "kind": e.kind, "label": labels[e.kind]}
        for e in view.events
        if e.kind in labels
    ]
    recovery = (view.rollback or {}).get("recovery") or {}
    if recovery.get("recovered") and view.reverted_at is not None:
        found.append(
            {
                "t": round(view.reverted_at + float(recovery["recovery_time_s"]) - t0, 3),
                "kind": "steady_again",
                "label": "steady again",
            }
        )
    return sorted(found, key=lambda e: e["t"])
