"""The experiment's state machine.

    designed → baselined → injected → (aborted) → rolled_back → reported
        ↘         ↓                ↘ failed ↙        ↘ aborted (a recovery-phase abort condition held)
          cancelled (rollback before any injection withdraws the experiment)

An experiment aborted during recovery has been rolled back: generate_report accepts it.

A tool called out of order is refused with the current state and the tool to call next.
"""

from __future__ import annotations

from enum import StrEnum

from chaos_mcp.engine.errors import EngineError


class State(StrEnum):
    DESIGNED = "designed"
    BASELINED = "baselined"
    INJECTED = "injected"
    ABORTED = "aborted"
    ROLLED_BACK = "rolled_back"
    REPORTED = "reported"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = (State.INJECTED, State.ABORTED)
NEXT_TOOL: dict[State, str] = {
    State.DESIGNED: "measure_steady_state (to take the baseline)",
    State.BASELINED: "inject_failure",
    State.INJECTED: "measure_steady_state (during the window) or rollback",
    State.ABORTED: "rollback (to verify the revert and measure recovery)",
    State.ROLLED_BACK: "generate_report",
    State.REPORTED: "generate_report (again) or design_experiment (a new experiment)",
    State.FAILED: "generate_report",
    State.CANCELLED: "design_experiment (a new experiment; this one was withdrawn before any injection)",
}

# tool → states it accepts
ALLOWED: dict[str, tuple[State, ...]] = {
    "measure_steady_state": tuple(s for s in State if s != State.CANCELLED),
    "inject_failure": (State.BASELINED,),
    "rollback": tuple(State),
    "generate_report": (State.ROLLED_BACK, State.REPORTED, State.FAILED),
}


class OutOfOrder(EngineError):
    """A tool was called in a state that does not allow it."""

    def __init__(self, tool: str, experiment_id: str, state: State, detail: str = "") -> None:
        self.tool, self.state = tool, state
        why = f" {detail}" if detail else ""
        super().__init__(
            f"{tool} cannot run now: experiment {experiment_id} is '{state}'.{why} "
            f"Next: call {NEXT_TOOL[state]}."
        )


def require(tool: str, experiment_id: str, state: State) -> None:
    if state not in ALLOWED[tool]:
        detail = ""
        if tool == "inject_failure" and state == State.DESIGNED:
            detail = "No baseline yet: the steady state must be measured before anything is injected."
        elif tool == "inject_failure" and state in ACTIVE_STATES:
            detail = "A fault is already injected for it."
        elif state == State.CANCELLED:
            detail = "It was withdrawn before any injection (rollback of a designed or baselined experiment)."
        elif tool == "generate_report":
            detail = "The report needs the experiment rolled back first."
        raise OutOfOrder(tool, experiment_id, state, detail)
