"""What the window of an experiment came to, for `inject_failure` with `wait: true`.

After the window the agent needs how it ended (reverted at the deadline, aborted by a stop
condition, stopped by the kill switch or a rollback), the figures measured so far, and the real
next step, not the advice for a window that is still open.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.engine.journal import IN_FORCE_STATUSES, Journal
from chaos_mcp.engine.lifecycle import NEXT_TOOL, State
from chaos_mcp.reports.journal_view import ExperimentView
from chaos_mcp.reports.results import detection, results


def window_outcome(journal: Journal, experiment_id: str, design: ExperimentDesign) -> dict[str, Any]:
    """The experiment's state after its window, how the window ended, the figures so far, the next tool."""
    row = journal.get_experiment(experiment_id)
    events, faults = journal.events(experiment_id), journal.faults(experiment_id)
    state = State(row.state) if row is not None else State.INJECTED
    ended = [e for e in events if e.kind in ("auto_reverted", "aborted")]
    in_force = [f.id for f in faults if f.status in IN_FORCE_STATUSES]
    if ended:
        last = ended[-1]
        how = "reverted at the deadline" if last.kind == "auto_reverted" else "aborted"
        outcome: dict[str, Any] = {
            "ended": how,
            "reason": last.data.get("reason"),
            "reverted_at": _iso(last.ts),
        }
    elif state == State.INJECTED and in_force:
        outcome = {"ended": "still open", "reason": "the supervision stopped before the deadline"}
    else:
        outcome = {"ended": f"the experiment is {state.value}", "reason": None}
    outcome["faults_in_force"] = in_force
    if row is not None:
        view = ExperimentView.build(row, design, events, faults)
        found = detection(view)
        outcome["samples"] = len(view.of("sample"))
        outcome["detection"] = _detection_text(found)
        outcome["criteria_so_far"] = [
            {
                "metric": r["metric"],
                "expected": r["expected"],
                "worst": r["actual_text"],
                "status": r["status"],
                "observations": r["observations"],
            }
            for r in results(view, found)
            if r["source"] == "window"
        ]
    return {"state": state.value, "window": outcome, "next": _next(state, in_force)}


def _next(state: State, in_force: list[str]) -> str:
    if state == State.INJECTED and in_force:
        return "measure_steady_state (during the window) or rollback"
    if state in (State.INJECTED, State.ABORTED):
        return (
            "rollback (the faults are already reverted: it verifies the revert and measures recovery), "
            "then generate_report"
        )
    return NEXT_TOOL[state]


def _detection_text(found: dict[str, Any] | None) -> str:
    if found is None:
        return "nothing watches for detection (no detection signal is probed)"
    if not found["detected"]:
        return "not detected"
    return f"after {found['detection_time_s']:g} s ({found.get('signal', '')})"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
