"""From the journal to the report's facts: status, results table, blast radius, gates."""

from __future__ import annotations

from typing import Any

from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.engine.journal import Event, ExperimentRow, FaultRow
from chaos_mcp.engine.verdicts import evaluate_all
from chaos_mcp.probes.base import Measurement

MOVEMENT_THRESHOLD = 0.2


def _measurements(raw: list[dict[str, Any]]) -> list[Measurement]:
    return [Measurement(**{k: v for k, v in m.items()}) for m in raw]


def collect(row: ExperimentRow, design: ExperimentDesign, events: list[Event],
            faults: list[FaultRow]) -> dict[str, Any]:
    by_kind: dict[str, list[Event]] = {}
    for event in events:
        by_kind.setdefault(event.kind, []).append(event)
    measures = [e for e in by_kind.get("measurement", [])]
    baseline = [e.data for e in measures if e.data["phase"] == "baseline"]
    during = [e.data for e in measures if e.data["phase"] == "during"]
    samples = [e.data for e in by_kind.get("sample", [])]
    rollback = by_kind.get("rollback", [])
    rollback_data = rollback[-1].data if rollback else None
    injected = by_kind.get("faults_injected", [])
    aborted = [e.data for e in by_kind.get("aborted", [])]

    window: list[dict[str, Any]] = (during[-1]["measurements"] if during else
                                    samples[-1]["measurements"] if samples else [])
    evidence = _measurements(window)
    recovery = (rollback_data or {}).get("recovery", {})
    if recovery.get("recovery_time_s") is not None:
        evidence.append(Measurement(probe="experiment", metric="recovery_time",
                                    value=float(recovery["recovery_time_s"]), unit="s"))
    results = [v.as_dict() for v in evaluate_all(design.success_criteria, evidence)]
    if not design.success_criteria and during:
        results = during[-1]["verdicts"]
    failed_run = row.state == "failed" or not injected or (rollback_data or {}).get("status") == "FAILED"
    if failed_run:
        status = "EXPERIMENT_FAILED"
    elif results and all(r["passed"] for r in results) and not aborted:
        status = "HYPOTHESIS_CONFIRMED"
    else:
        status = "HYPOTHESIS_REJECTED"
    started = injected[0].ts if injected else row.created_at
    ended = rollback[-1].ts if rollback else events[-1].ts if events else row.updated_at
    return {
        "status": status,
        "duration_s": max(0.0, ended - started),
        "baseline": baseline[-1] if baseline else None,
        "during": during[-1] if during else None,
        "samples": len(samples),
        "results": results,
        "rollback": rollback_data,
        "aborted": aborted,
        "injected": injected[0].data if injected else None,
        "faults": [{"id": f.id, "kind": f.record.get("kind"), "status": f.status} for f in faults],
        "blast_radius": blast_radius(design, baseline[-1] if baseline else None,
                                     [*(d["measurements"] for d in during), *(s["measurements"] for s in samples)]),
        "timeline": [{"at": e.ts, "kind": e.kind} for e in events],
    }


def blast_radius(design: ExperimentDesign, baseline: dict[str, Any] | None,
                 windows: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Which targets moved beyond their baseline during the window, against the declared radius."""
    if baseline is None or not windows:
        return {"declared": design.blast_radius.targets, "moved": [], "expansion": [],
                "note": "no baseline and window measurements to compare"}
    before = {(m["probe"], m["metric"]): m["value"] for m in baseline["measurements"] if not m["labels"]}
    moved: dict[str, list[str]] = {}
    for window in windows:
        for m in window:
            key = (m["probe"], m["metric"])
            if m["labels"] or key not in before:
                continue
            base, now = before[key], m["value"]
            if abs(now - base) > max(abs(base) * MOVEMENT_THRESHOLD, 1e-9) and m["metric"] != "probe_timeout":
                moved.setdefault(m["probe"], [])
                if m["metric"] not in moved[m["probe"]]:
                    moved[m["probe"]].append(m["metric"])
    expansion = sorted(set(moved) - set(design.blast_radius.targets))
    return {"declared": design.blast_radius.targets, "scope": design.blast_radius.scope,
            "moved": [{"target": t, "metrics": ms} for t, ms in sorted(moved.items())], "expansion": expansion}
