"""Findings: what the evidence says went wrong, each with a recommendation that names it.

Every finding comes from one journaled fact (a failed revert, a criterion that failed, an
abort condition that fired, a target that moved outside the blast radius, a detection that
never came, a baseline that was not steady, a crash recovered by `chaos-mcp recover`). Each
check is a small function `(view, facts) -> list[Finding]`; the report lists them by severity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from chaos_mcp.durations import format_duration
from chaos_mcp.reports.journal_view import ExperimentView

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(frozen=True)
class Finding:
    severity: str  # critical | high | medium | low
    kind: str
    behavior: str  # what happened (Unexpected Behaviors)
    evidence: str  # the journaled fact it rests on
    recommendation: str  # what to harden, naming the evidence

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


Check = Callable[[ExperimentView, dict[str, Any]], list[Finding]]


def _failed_reverts(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    steps = (view.rollback or {}).get("steps") or []
    return [
        Finding(
            "critical",
            "failed_revert",
            f"fault {s['fault_id']} ({s.get('kind')}) was not reverted: {s.get('detail')}",
            f"rollback step {s['fault_id']} status FAILED",
            f"Revert {s.get('description') or s.get('kind')} by hand now (rollback plan: "
            f"{'; '.join(view.design.rollback_plan)}), then make its revert verifiable: "
            f"the journal shows '{s.get('detail')}'.",
        )
        for s in steps
        if s.get("status") == "FAILED"
    ]


def _integrity(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    integrity = (view.rollback or {}).get("integrity") or {}
    broken = [c for c in integrity.get("checked", []) if not c.get("equal")]
    return [
        Finding(
            "critical",
            "integrity",
            f"{c['metric']} differs after rollback: {c['before']} before, {c['after']} after",
            f"rollback integrity check of {c['metric']}",
            f"Restore {c['metric']} to its baseline value {c['before']} and find which step of the "
            f"revert left it at {c['after']}.",
        )
        for c in broken
    ]


def _not_recovered(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    rollback = view.rollback or {}
    recovery = rollback.get("recovery") or {}
    if not recovery or recovery.get("recovered", True):
        return []
    if any(s.get("status") == "FAILED" for s in rollback.get("steps", [])):
        return []  # the fault is still in force: that is the finding, not the system's recovery
    why = recovery.get("why", "steady state not back")
    return [
        Finding(
            "critical",
            "no_recovery",
            f"the steady state did not come back after the revert: {why}",
            f"rollback recovery: {recovery.get('samples', 0)} sample(s), none steady twice in a row",
            f"Make {view.design.target_component} recover on its own after {view.design.scenario}: {why}. "
            "Until then the system needs a manual restart after this failure.",
        )
    ]


def _expansion(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    blast = facts["blast_radius"]
    moved = {m["target"]: m["metrics"] for m in blast["moved"]}
    found = []
    for target in blast["expansion"]:
        metrics = ", ".join(
            f"{m['metric']} {m['baseline']:g} → {m['peak']:g} {m['unit']}".rstrip() for m in moved[target]
        )
        found.append(
            Finding(
                "high",
                "blast_radius_expansion",
                f"{target} moved although it is outside the declared blast radius "
                f"({', '.join(blast['declared'])}): {metrics}",
                f"window observations of {target} against its baseline",
                f"Isolate {target} from failures of {view.design.target_component} (timeouts, circuit "
                f"breaker, bulkhead): under {view.design.scenario} it showed {metrics}.",
            )
        )
    return found


def _aborts(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    found = []
    for event in view.of("aborted"):
        reason = str(event.data.get("reason", ""))
        at = event.ts - view.injected_at if view.injected_at else None
        when = f" {format_duration(at)} after injection" if at is not None else ""
        if event.data.get("phase") == "recovery":
            found.append(
                Finding(
                    "critical",
                    "abort_condition",
                    f"a recovery stop condition held after the revert: {reason}",
                    f"recovery sample after the revert, journaled at {_hms(event.ts)}; the experiment was "
                    "stopped as aborted",
                    f"{view.design.target_component} did not come back within its stop condition after "
                    f"{view.design.scenario} was reverted: make recovery automatic (reconnect, retry with "
                    "backoff, drain queues) before running this again.",
                )
            )
        elif event.data.get("evidence"):
            found.append(
                Finding(
                    "high",
                    "abort_condition",
                    f"a stop condition fired{when}: {reason}",
                    f"supervisor sample at {_hms(event.ts)}; faults reverted at once",
                    f"{view.design.target_component} crossed a stop condition under {view.design.scenario} "
                    f"({reason.removeprefix('abort condition held: ')}): add protection that keeps it "
                    "inside that limit (shed load, fail fast, serve degraded) before running at this "
                    "magnitude again.",
                )
            )
        elif not view.of("recovered"):
            found.append(
                Finding(
                    "medium",
                    "interrupted",
                    f"the experiment was stopped{when}: {reason}",
                    f"'aborted' event by {event.data.get('by', 'an operator')}",
                    f"The run was interrupted ({reason}); its results are partial. Re-run it once the "
                    "reason for stopping is resolved.",
                )
            )
    return found


def _criteria(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    found = []
    for row in facts["results"]:
        if row["passed"] or row["criterion"] == "" or row["metric"].endswith(("detection_time",)):
            continue
        if not row["measured"]:
            continue  # nothing was observed: covered by _unobserved
        if row["metric"].endswith("recovery_time"):
            if row["actual"] is None:
                continue  # covered by _not_recovered
            found.append(
                Finding(
                    "high",
                    "slow_recovery",
                    f"recovery took {row['actual_text']}, over the criterion {row['expected']}",
                    "rollback recovery measurement",
                    f"Shorten recovery of {view.design.target_component} after {view.design.scenario}: "
                    f"the steady state came back {row['actual_text']} after the revert against "
                    f"{row['criterion']} (reconnect/backoff settings, cache warm-up, health-check period).",
                )
            )
            continue
        observed = f" (worst of {row['observations']} observation(s))" if row["observations"] > 1 else ""
        found.append(
            Finding(
                "high",
                "criterion_failed",
                f"{row['metric']}: expected {row['expected']}, measured {row['actual_text']}{observed}"
                + (f" — {row['note']}" if row["note"] and row["actual"] is None else ""),
                f"success criterion '{row['criterion']}' judged on the window",
                f"Harden {view.design.target_component} so that {row['criterion']} holds under "
                f"{view.design.scenario}: it reached {row['actual_text']}{observed}.",
            )
        )
    return found


def _detection(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    detected = facts.get("detection")
    wanted = [r for r in facts["results"] if r["metric"].endswith("detection_time")]
    if not wanted or all(r["passed"] for r in wanted):
        return []
    row = wanted[0]
    if detected is not None and not detected["detected"] and not detected.get("observations"):
        return []  # nothing was observed: covered by _unobserved
    if detected and detected["detected"]:
        return [
            Finding(
                "medium",
                "slow_detection",
                f"detection took {row['actual_text']}, over {row['expected']}",
                f"first detection signal after injection: {detected['signal']}",
                f"Detect {view.design.scenario} sooner: the first signal ({detected['signal']}) came only "
                "after "
                f"{row['actual_text']} (criterion {row['expected'] or 'a change'}); shorten the "
                "health-check or alert evaluation interval.",
            )
        ]
    watched = ", ".join((detected or {}).get("watched", [])) or "no detection signal"
    return [
        Finding(
            "high",
            "no_detection",
            f"the failure was never detected: {row['note'] or 'no signal changed'}",
            f"{watched} unchanged across {(detected or {}).get('observations', 0)} window observation(s)",
            f"Add detection for {view.design.scenario} on {view.design.target_component}: {watched} "
            "never signalled while the fault was active, so nothing would have alerted anyone.",
        )
    ]


def _unobserved(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    if view.injected_at is None or view.window():
        return []
    window = facts.get("fault_active_s")
    span = f" ({format_duration(window)})" if window is not None else ""
    return [
        Finding(
            "medium",
            "unobserved",
            f"nothing was measured while the faults were active{span}",
            "no 'sample' or 'during' measurement event between injection and revert",
            "Observe the window: call measure_steady_state while injected, or give the experiment a duration "
            "long enough for the supervisor to sample (it samples every max(0.5s, duration/10)).",
        )
    ]


def _baseline(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    baseline = view.baseline_event()
    if baseline is None or baseline.get("steady", True):
        return []
    failing = "; ".join(
        f"{v['criterion']} (actual {v['actual']})" for v in baseline.get("verdicts", []) if not v["passed"]
    )
    return [
        Finding(
            "medium",
            "degraded_baseline",
            f"the baseline was not steady: {failing}",
            "baseline measurement"
            + (" (declared known degraded)" if view.design.baseline_known_degraded else ""),
            f"Fix the steady state of {view.design.target_component} first ({failing}); results measured "
            "from a degraded baseline understate the impact of the failure.",
        )
    ]


def _unmeasured(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    """A declared criterion nothing measured: the verdict cannot rest on it (it is INCONCLUSIVE)."""
    if not view.window():
        return []  # nothing at all was observed: covered by _unobserved
    return [
        Finding(
            "medium",
            "unmeasured_criterion",
            f"{row['criterion']} was declared but nothing measured {row['metric']} "
            f"({row['actual_text']}); it is INCONCLUSIVE, not a pass or a failure",
            f"no measurement of {row['metric']} in {len(view.window())} window observation(s)",
            f"Measure {row['metric']} (a probe of the blast radius that reports it; list_targets shows what "
            "each target measures) or write the criterion on a metric that is measured, then run again.",
        )
        for row in facts["results"]
        if row.get("origin") in ("declared", "steady_state") and row["criterion"] and not row["measured"]
    ]


def _probe_timeouts(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    """Only consecutive timeouts with the probe's full budget (reports.blast) say a target hung."""
    timeouts = facts["blast_radius"].get("probe_timeouts", [])
    return [
        Finding(
            "medium",
            "probe_timeout",
            f"the probe of {t['target']} stopped answering during the window",
            f"{t['consecutive']} consecutive window observations in which the probe of {t['target']} "
            f"timed out after its full budget of {t['budget_s']:g}s",
            f"{t['target']} hung instead of failing fast under {view.design.scenario}: give its clients "
            "timeouts shorter than the probe's so failures surface as errors.",
        )
        for t in timeouts
    ]


def _crash(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    return [
        Finding(
            "medium",
            "recovered_after_crash",
            "the server running the experiment stopped during the window; `chaos-mcp recover` reverted "
            "its faults",
            f"'recovered' event at {_hms(e.ts)} by {e.data.get('by', 'chaos-mcp recover')}",
            "Find why the chaos-mcp server stopped mid-experiment (its stderr log) and re-run: the window "
            "was cut short, so the results are partial.",
        )
        for e in view.of("recovered")
    ]


def _proxy_lost(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    return [
        Finding(
            "high",
            "proxy_lost",
            str(e.data.get("message", f"the proxy {e.data.get('proxy')!r} was lost during the window")),
            f"'proxy_lost' event: daemon of generation {e.data.get('generation_at_inject')} died "
            f"({e.data.get('died_of')}) at {e.data.get('at')}",
            f"Re-run {view.design.scenario}: the fault on proxy {e.data.get('proxy')!r} ended early when its "
            "daemon restarted, so the window measured only part of the failure. Find why the proxy daemon "
            "died (its log, proxy.log in the state directory).",
        )
        for e in view.of("proxy_lost")
    ]


CHECKS: tuple[Check, ...] = (
    _failed_reverts,
    _integrity,
    _proxy_lost,
    _not_recovered,
    _aborts,
    _expansion,
    _criteria,
    _detection,
    _unobserved,
    _unmeasured,
    _probe_timeouts,
    _baseline,
    _crash,
)


def findings(view: ExperimentView, facts: dict[str, Any]) -> list[Finding]:
    found = [f for check in CHECKS for f in check(view, facts)]
    return sorted(found, key=lambda f: SEVERITY_ORDER[f.severity])


def no_finding_recommendation(view: ExperimentView, facts: dict[str, Any]) -> str:
    """When nothing failed: the next, slightly larger step, naming what held."""
    held = ", ".join(f"{r['metric']} {r['actual_text']}" for r in facts["results"] if r["passed"])
    from chaos_mcp.reports.gates import parameters_text

    parameters = parameters_text(view.design.parameters)
    return (
        f"{view.design.scenario} at {parameters} for {format_duration(view.design.duration_s)} held "
        f"({held or 'no criterion failed'}): expand gradually — a longer duration or a larger magnitude, "
        "or one more target in the blast radius."
    )


def _hms(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")
