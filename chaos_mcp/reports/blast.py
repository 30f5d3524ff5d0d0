"""Blast radius measured: which targets moved beyond their baseline while the faults acted.

A metric moved when some window observation differs from the baseline by more than both a
relative share of the baseline and an absolute floor for its unit (so a latency going from
0.4 ms to 0.6 ms is not "movement"). A latency percentile must move in two observations when
the window holds three or more: one stalled sample on a shared machine is not an effect.
Movement of a target outside the declared blast radius (and not the experiment's own target)
is blast-radius expansion.
"""

from __future__ import annotations

from typing import Any

from chaos_mcp.engine.measure import FULL_BUDGET
from chaos_mcp.reports.journal_view import ExperimentView

RELATIVE = 0.2
# Latencies on a shared machine jitter by tens of ms and by 2-5x at the low end, so a latency only
# counts as moved when it at least doubled and by more than 50 ms; errors and health move cleanly.
RELATIVE_BY_UNIT = {"ms": 1.0, "s": 1.0}
SUSTAINED_UNITS = frozenset(RELATIVE_BY_UNIT)
FLOORS = {"ms": 50.0, "s": 0.05, "ratio": 0.01, "%": 1.0, "count": 1.0, "level": 1.0, "bool": 1.0}
IGNORED = frozenset({"probe_timeout", "probe_error"})


def margin(base: float, unit: str) -> float:
    """How far from its baseline a value must be to count as movement."""
    return max(abs(base) * RELATIVE_BY_UNIT.get(unit, RELATIVE), FLOORS.get(unit, 1e-9))


def moved(base: float, now: float, unit: str) -> bool:
    return abs(now - base) > margin(base, unit)


def rule(window: int) -> str:
    """The rule, in words, for the report: it is stated with the figures it produced."""
    sustained = 2 if window >= 3 else 1
    return (
        f"a metric moved when a window observation differs from its baseline by more than "
        f"{RELATIVE:.0%} of the baseline (latencies: {RELATIVE_BY_UNIT['ms']:.0%} and at least "
        f"{FLOORS['ms']:g} ms, in {sustained} observation(s) or more), and by more than a floor per unit "
        f"(error ratio {FLOORS['ratio']:g}, {FLOORS['%']:g} %, a count or level of {FLOORS['count']:g})"
    )


def blast_radius(view: ExperimentView) -> dict[str, Any]:
    design = view.design
    declared = list(dict.fromkeys([design.target_component, *design.blast_radius.targets]))
    baseline, window = view.baseline(), view.window()
    result: dict[str, Any] = {
        "declared": declared,
        "scope": design.blast_radius.scope,
        "routes": design.blast_radius.routes,
        "measured": baseline is not None and bool(window),
        "observations": len(window),
        "moved": [],
        "expansion": [],
        "probe_timeouts": _timeouts(view),
    }
    if baseline is None or not window:
        result["note"] = "no baseline and window observations to compare"
        return result
    changes: dict[tuple[str, str], dict[str, Any]] = {}
    counts: dict[tuple[str, str], int] = {}
    for m in baseline.measurements:
        if m["labels"] or m["metric"] in IGNORED:
            continue
        before = float(m["value"])
        for observation in window:
            now = observation.value(m["probe"], m["metric"])
            if now is None or not moved(before, now, m["unit"]):
                continue
            key = (m["probe"], m["metric"])
            change = changes.setdefault(
                key,
                {
                    "metric": m["metric"],
                    "unit": m["unit"],
                    "baseline": before,
                    "peak": now,
                    "margin": margin(before, m["unit"]),
                    "window": sum(o.value(m["probe"], m["metric"]) is not None for o in window),
                },
            )
            counts[key] = counts.get(key, 0) + 1
            change["beyond"] = counts[key]
            if abs(now - before) > abs(change["peak"] - before):
                change["peak"] = now
    sustained = 2 if len(window) >= 3 else 1
    targets: dict[str, list[dict[str, Any]]] = {}
    for key, change in sorted(changes.items()):
        if counts[key] >= (sustained if change["unit"] in SUSTAINED_UNITS else 1):
            targets.setdefault(key[0], []).append(change)
    result["moved"] = [{"target": t, "metrics": ms} for t, ms in targets.items()]
    result["expansion"] = sorted(set(targets) - set(declared))
    result["compared"] = sorted({m["probe"] for m in baseline.measurements})
    result["rule"] = rule(len(window))
    return result


HUNG_AFTER = 2  # consecutive window observations whose probe timed out with its full budget


def _timeouts(view: ExperimentView) -> list[dict[str, Any]]:
    """Targets whose probe timed out with its full time budget in HUNG_AFTER consecutive window
    observations: the evidence for "stopped answering". A timeout cut short by a round's small
    budget, or a single one, says nothing of the target (it may be the machine or the sampler)."""
    runs: dict[str, int] = {}
    longest: dict[str, dict[str, Any]] = {}
    targets = {str(m["probe"]) for o in view.window() for m in o.measurements}
    for observation in sorted(view.window(), key=lambda o: o.at):
        full = {str(m["probe"]): m for m in observation.measurements if _full_budget_timeout(m)}
        for target in targets:
            if target not in full:
                runs[target] = 0
                continue
            runs[target] = runs.get(target, 0) + 1
            budget = round(float(full[target]["ended_at"]) - float(full[target]["started_at"]), 1)
            best = longest.get(target, {"consecutive": 0})
            if runs[target] > best["consecutive"]:
                longest[target] = {"target": target, "consecutive": runs[target], "budget_s": budget}
    return [longest[t] for t in sorted(longest) if longest[t]["consecutive"] >= HUNG_AFTER]


def _full_budget_timeout(m: dict[str, Any]) -> bool:
    """A timeout after the probe's whole budget (journals from before it was recorded: no claim)."""
    return m["metric"] == "probe_timeout" and FULL_BUDGET in str(m.get("note", ""))
