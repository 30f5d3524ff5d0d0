"""The results table: success criteria judged against the whole window, detection and recovery.

A criterion about the system under failure must hold in every observation of the window, so
its "actual" is the worst value observed (the largest for `<`, the smallest for `>`), with
the number of observations it was judged on. `recovery_time` comes from the rollback's
recovery measurement and `detection_time` from the first change of a detection signal.
"""

from __future__ import annotations

from typing import Any

from chaos_mcp.criteria import Criterion
from chaos_mcp.durations import format_duration
from chaos_mcp.engine.recovery import recovery_bound
from chaos_mcp.engine.verdicts import Verdict, evaluate
from chaos_mcp.probes.base import Measurement
from chaos_mcp.probes.tolerance import convert
from chaos_mcp.reports.journal_view import ExperimentView, Observation

# Metrics through which a system under test raises a signal (health turning degraded, a
# defense level rising, an alert firing): their first change after injection is detection.
SIGNAL_METRICS = ("healthy", "defense_level")
DERIVED = ("recovery_time", "detection_time")
TIME_UNITS = ("s", "sec", "min", "m", "h")
DECLARED, STEADY_STATE, SERVER = "declared", "steady_state", "server"


def is_signal(metric: str) -> bool:
    return metric in SIGNAL_METRICS or "alert" in metric.lower()


def measurements_of(observation: Observation) -> list[Measurement]:
    fields = ("probe", "metric", "value", "unit", "samples", "started_at", "ended_at", "labels", "note")
    return [Measurement(**{k: m[k] for k in fields if k in m}) for m in observation.measurements]


def detection(view: ExperimentView) -> dict[str, Any] | None:
    """From injection to the first detection signal; None when nothing watches for one.

    The design's `detection_signals` are judged by the supervisor (event `detected`); without
    them, a change from the baseline of a signal metric (health, defense level, an alert) counts.
    """
    if view.design.detection_signals:
        return _declared(view)
    return _inferred(view)


def _declared(view: ExperimentView) -> dict[str, Any]:
    watched = [c.text() for c in view.design.detection_signals]
    event = view.first("detected")
    if event is None:
        return {
            "detected": False,
            "detection_time_s": None,
            "watched": watched,
            "observations": len(view.window()),
        }
    raised = event.data.get("signals") or [{}]
    return {
        "detected": True,
        "detection_time_s": event.data.get("detection_time_s"),
        "signal": raised[0].get("criterion", watched[0]),
        "watched": watched,
        "declared": True,
    }


def _inferred(view: ExperimentView) -> dict[str, Any] | None:
    baseline, injected_at = view.baseline(), view.injected_at
    if baseline is None or injected_at is None:
        return None
    signals = {
        (m["probe"], m["metric"]): float(m["value"])
        for m in baseline.measurements
        if not m["labels"] and is_signal(m["metric"])
    }
    if not signals:
        return None
    watched = sorted(f"{p}.{m}" for p, m in signals)
    for observation in sorted(view.window(), key=lambda o: o.at):
        for (probe, metric), before in sorted(signals.items()):
            after = observation.value(probe, metric)
            if after is not None and after != before:
                return {
                    "detected": True,
                    "detection_time_s": round(max(0.0, observation.at - injected_at), 3),
                    "signal": f"{probe}.{metric} {before:g} → {after:g}",
                    "watched": watched,
                    "declared": False,
                }
    return {
        "detected": False,
        "detection_time_s": None,
        "watched": watched,
        "observations": len(view.window()),
    }


def _worst(criterion: Criterion, verdicts: list[Verdict]) -> Verdict:
    measured = [v for v in verdicts if v.actual is not None]
    if not measured:
        return verdicts[-1]
    pool = [v for v in measured if not v.passed] or measured
    if criterion.op in ("<", "<="):
        return max(pool, key=lambda v: v.actual or 0.0)
    if criterion.op in (">", ">="):
        return min(pool, key=lambda v: v.actual or 0.0)
    return pool[0]


def _row(verdict: Verdict, source: str, observations: int = 0, origin: str = DECLARED) -> dict[str, Any]:
    """`origin`: declared (the agent's success criterion), steady_state (the agent's steady state, judged
    when no success criterion was given) or server (the server's own observation, nobody asked for it)."""
    row = verdict.as_dict()
    row["source"] = source
    row["observations"] = observations
    row["status"] = verdict.status
    row["actual_text"] = actual_text(verdict.actual, verdict.unit)
    row["measured"] = verdict.measured
    row["origin"] = origin
    if not verdict.measured and observations:
        row["actual_text"] = f"not measured in {observations} observation(s)"
    return row


def actual_text(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    if unit in TIME_UNITS:
        return format_duration(convert(value, unit, "s", "time"))
    if unit in ("%", ""):
        return f"{value:g}{unit}"
    return f"{value:g} {unit}"


def window_verdict(criterion: Criterion, window: list[Observation], origin: str = DECLARED) -> dict[str, Any]:
    verdicts = [evaluate(criterion, measurements_of(o)) for o in window]
    if not verdicts:
        none = Verdict(criterion, None, criterion.unit, False, "no observation during the window")
        return _row(none, "window", 0, origin)
    return _row(_worst(criterion, verdicts), "window", len(verdicts), origin)


def derived_verdict(
    criterion: Criterion, value: float | None, note: str, source: str, looked: bool
) -> dict[str, Any]:
    """A criterion on a derived time; `looked` says the evidence was sought (absence is then a result)."""
    measurements = [] if value is None else [Measurement("experiment", criterion.metric, value, "s")]
    verdict = evaluate(
        criterion.model_copy(update={"metric": criterion.metric.rpartition(".")[2]}), measurements
    )
    if value is None:
        verdict = Verdict(criterion, None, "s", False, note)
    row = _row(verdict, source, 1 if value is not None else 0)
    if value is None and looked:  # the evidence was sought and its absence is the result
        row |= {
            "measured": True,
            "status": "FAIL",
            "actual_text": "never" if source == "detection" else "not recovered",
        }
    return row


def results(view: ExperimentView, detected: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per success criterion, then detection and recovery time when no criterion names them."""
    rows: list[dict[str, Any]] = []
    recovery = (view.rollback or {}).get("recovery") or {}
    window = view.window()
    for criterion in view.design.success_criteria:
        name = criterion.metric.rpartition(".")[2]
        if name == "recovery_time":
            note = recovery.get("why") or "rollback did not measure recovery"
            rows.append(
                derived_verdict(criterion, recovery.get("recovery_time_s"), note, "rollback", bool(recovery))
            )
        elif name == "detection_time":
            value = (detected or {}).get("detection_time_s")
            note = _no_detection_note(detected)
            looked = detected is not None and bool(detected["detected"] or window)
            rows.append(derived_verdict(criterion, value, note, "detection", looked))
        else:  # a phase-qualified criterion is judged on that phase's observations
            rows.append(window_verdict(criterion, view.phase(criterion.phase) if criterion.phase else window))
    if not view.design.success_criteria:
        origin = STEADY_STATE if view.design.steady_state else SERVER
        rows += [window_verdict(c, window, origin) for c in _steady_state(view)]
    named = {r["metric"].rpartition(".")[2] for r in rows}
    if detected is not None and "detection_time" not in named and (detected["detected"] or window):
        rows.append(_info_detection(detected))
    if recovery and "recovery_time" not in named:
        rows.append(_info_recovery(recovery, recovery_bound(view.design)))
    return rows


def _steady_state(view: ExperimentView) -> list[Criterion]:
    baseline = view.baseline_event()
    if view.design.steady_state or baseline is None:
        return list(view.design.steady_state)
    from chaos_mcp.criteria import parse_criterion

    return [parse_criterion(v["criterion"]) for v in baseline.get("verdicts", [])]


def _no_detection_note(detected: dict[str, Any] | None) -> str:
    if detected is None:
        return "no detection signal is probed (health, defense_level or an alert metric)"
    return (
        f"no change of {', '.join(detected['watched'])} in {detected.get('observations', 0)} observation(s)"
    )


def _info_detection(detected: dict[str, Any]) -> dict[str, Any]:
    found = detected["detected"]
    return {
        "criterion": "",
        "metric": "detection_time",
        "expected": "a signal change (no criterion given)",
        "actual": detected["detection_time_s"],
        "unit": "s",
        "actual_text": f"{format_duration(detected['detection_time_s'])} ({detected['signal']})"
        if found
        else "never",
        "passed": found,
        "measured": True,
        "status": "PASS" if found else "FAIL",
        "origin": SERVER,
        "note": "" if found else _no_detection_note(detected),
        "probe": "",
        "source": "detection",
        "observations": detected.get("observations", 1),
    }


def _info_recovery(recovery: dict[str, Any], bound_s: float) -> dict[str, Any]:
    recovered = bool(recovery.get("recovered"))
    bound = recovery.get("bound_s") or bound_s
    return {
        "criterion": "",
        "metric": "recovery_time",
        "expected": "steady state back" + (f" within {format_duration(bound)}" if bound else ""),
        "actual": recovery.get("recovery_time_s"),
        "unit": "s",
        "actual_text": format_duration(recovery["recovery_time_s"]) if recovered else "not recovered",
        "passed": recovered,
        "measured": True,
        "status": "PASS" if recovered else "FAIL",
        "origin": SERVER,
        "note": recovery.get("why", ""),
        "probe": "",
        "source": "rollback",
        "observations": 1,
    }
