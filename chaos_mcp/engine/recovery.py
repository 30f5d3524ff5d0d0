"""After revert: how long until the steady state holds again, and is the data intact?"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio

from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.criteria import in_phase
from chaos_mcp.engine.verdicts import Verdict, evaluate_all

if TYPE_CHECKING:
    from chaos_mcp.engine.core import Engine

CONSECUTIVE = 2
POLL = 0.25
INTEGRITY_METRICS = ("coverage_pct", "uncovered_slots", "acgme_violations", "assignments", "checksum")


def recovery_bound(design: ExperimentDesign) -> float:
    return max(10.0, min(120.0, 2 * design.duration_s))


async def measure_recovery(
    engine: Engine, design: ExperimentDesign, reverted_at: float, experiment_id: str | None = None
) -> dict[str, Any]:
    """Probe until the steady state holds for CONSECUTIVE samples; recovery_time is to the first.

    Every sample is also checked against the recovery-phase abort conditions: the first that holds
    ends the measurement, and the result carries `aborted` (reason and evidence) for the caller.
    With `experiment_id`, each sample is journaled (`recovery_sample`), so recovery-phase success
    criteria are judged on what was measured after the revert.
    """
    criteria = engine.measurer.steady_state_criteria(design)
    stops = in_phase(design.abort_conditions, "recovery")
    bound = recovery_bound(design)
    streak_start: float | None = None
    streak = 0
    samples = 0
    last: list[dict[str, Any]] = []
    deadline = time.time() + bound
    while time.time() < deadline:
        taken = time.time()
        measurements = await engine.measurer.sample(design)
        verdicts = evaluate_all(criteria, measurements)
        samples += 1
        last = [v.as_dict() for v in verdicts]
        if experiment_id is not None:
            engine.journal.append(
                experiment_id,
                "recovery_sample",
                {"taken_at": taken, "measurements": [m.as_dict() for m in measurements]},
            )
        fired = [v for v in evaluate_all(stops, measurements) if v.passed]
        if fired:
            return _stopped(fired, taken - reverted_at, samples, criteria)
        if all(v.passed for v in verdicts):
            streak_start = streak_start if streak else taken
            streak += 1
            if streak >= CONSECUTIVE:
                assert streak_start is not None
                recovery_time = max(0.0, streak_start - reverted_at)
                return {
                    "recovered": True,
                    "recovery_time_s": round(recovery_time, 3),
                    "samples": samples,
                    "criteria": [c.text() for c in criteria],
                }
        else:
            streak = 0
        await anyio.sleep(POLL)
    failing = [v["criterion"] for v in last if not v["passed"]]
    return {
        "recovered": False,
        "recovery_time_s": None,
        "samples": samples,
        "bound_s": bound,
        "why": f"steady state not back within {bound:g}s; still failing: {', '.join(failing) or '?'}",
        "criteria": [c.text() for c in criteria],
    }


def _stopped(fired: list[Verdict], after: float, samples: int, criteria: list[Any]) -> dict[str, Any]:
    held = "; ".join(
        f"{v.criterion.text()} (actual {v.actual:g} {v.unit})" for v in fired if v.actual is not None
    )
    reason = f"abort condition held during recovery, {max(0.0, after):.1f}s after the revert: {held}"
    return {
        "recovered": False,
        "recovery_time_s": None,
        "samples": samples,
        "why": f"not recovered: {reason}",
        "criteria": [c.text() for c in criteria],
        "aborted": {"reason": reason, "phase": "recovery", "evidence": [v.as_dict() for v in fired]},
    }


async def check_integrity(engine: Engine, experiment_id: str, design: ExperimentDesign) -> dict[str, Any]:
    """Compare the integrity metrics of the target now with the baseline's."""
    baseline = [
        e.data for e in engine.journal.events(experiment_id, ["measurement"]) if e.data["phase"] == "baseline"
    ]
    if not baseline:
        return {"intact": True, "checked": [], "note": "no baseline to compare with"}
    now = await engine.measurer.sample(design)
    before = {
        (m["probe"], m["metric"]): m["value"]
        for m in baseline[-1]["measurements"]
        if m["probe"] == design.target_component and m["metric"] in INTEGRITY_METRICS and not m["labels"]
    }
    after = {
        (m.probe, m.metric): m.value
        for m in now
        if m.probe == design.target_component and m.metric in INTEGRITY_METRICS and not m.labels
    }
    checked = [
        {
            "metric": f"{p}.{metric}",
            "before": value,
            "after": after.get((p, metric)),
            "equal": after.get((p, metric)) == value,
        }
        for (p, metric), value in sorted(before.items())
    ]
    return {"intact": all(c["equal"] for c in checked), "checked": checked}


def judge(recovery_result: dict[str, Any], integrity: dict[str, Any]) -> dict[str, Any]:
    """Recovery is not reached while an integrity metric differs from the baseline, however steady."""
    differ = [c for c in integrity.get("checked", []) if not c.get("equal")]
    if not differ or not recovery_result.get("recovered"):
        return recovery_result
    what = ", ".join(f"{c['metric']} {c['before']} → {c['after']}" for c in differ)
    return recovery_result | {
        "recovered": False,
        "recovery_time_s": None,
        "steady_after_s": recovery_result.get("recovery_time_s"),
        "why": f"not recovered: the data differs from the baseline after the revert ({what})",
    }
