"""Supervision of the window between injection and revert.

Samples every probe at an interval, journals every sample, treats the window's abort conditions
(phase `during`, the default) as stop conditions (revert at once, experiment `aborted`), and
reverts at the deadline. Recovery-phase abort conditions are engine.recovery's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.criteria import in_phase
from chaos_mcp.engine.journal import Journal
from chaos_mcp.engine.lifecycle import State
from chaos_mcp.engine.reverter import revert_faults
from chaos_mcp.engine.verdicts import evaluate_all
from chaos_mcp.probes.base import Measurement

if TYPE_CHECKING:
    from chaos_mcp.engine.core import Engine

log = structlog.get_logger("chaos_mcp.supervisor")
Progress = Callable[[float, float, str], Awaitable[None]]


def sampling_interval(duration: float) -> float:
    return max(0.5, min(5.0, duration / 10))


class Supervisor:
    def __init__(
        self, engine: Engine, experiment_id: str, design: ExperimentDesign, started: float, deadline: float
    ) -> None:
        self.engine = engine
        self.experiment_id = experiment_id
        self.design = design
        self.started = started
        self.deadline = deadline
        self.interval = sampling_interval(design.duration_s)
        self._scope = anyio.CancelScope()
        self.detected = False

    def stop(self) -> None:
        self._scope.cancel()

    async def run(self, progress: Progress | None) -> None:
        with self._scope:
            while (remaining := self.deadline - time.time()) > 0:
                tick = time.time()
                if await self._sample_and_check(budget=max(0.05, min(self.interval, remaining) - 0.05)):
                    return
                if progress is not None:
                    elapsed = min(time.time() - self.started, self.design.duration_s)
                    await progress(
                        elapsed, self.design.duration_s, f"{elapsed:.0f}s of {self.design.duration_s:g}s"
                    )
                await anyio.sleep(
                    max(0.0, min(self.interval - (time.time() - tick), self.deadline - time.time()))
                )
            await self._revert("deadline reached", "auto_reverted", None)

    async def _sample_and_check(self, budget: float) -> bool:
        measurements = await self.engine.measurer.sample(self.design, budget)
        self._check_detection(measurements)
        verdicts = evaluate_all(in_phase(self.design.abort_conditions, "during"), measurements)
        fired = [v for v in verdicts if v.passed]
        self.engine.journal.append(
            self.experiment_id,
            "sample",
            {
                "t": time.time() - self.started,
                "measurements": [m.as_dict() for m in measurements],
                "abort_checks": [v.as_dict() for v in verdicts],
            },
        )
        if fired:
            reason = "abort condition held: " + "; ".join(
                f"{v.criterion.text()} (actual {v.actual:g} {v.unit})" for v in fired if v.actual is not None
            )
            await self._revert(reason, "aborted", [v.as_dict() for v in fired])
            return True
        return False

    def _check_detection(self, measurements: list[Measurement]) -> None:
        if not self.detected:
            self.detected = record_detection(
                self.engine.journal, self.experiment_id, self.design, measurements
            )

    async def _revert(self, reason: str, event: str, evidence: list[dict[str, Any]] | None) -> None:
        with anyio.CancelScope(shield=True):
            steps = await revert_faults(self.engine.journal, self.engine.journal.faults(self.experiment_id))
            data = {"reason": reason, "steps": steps, "evidence": evidence}
            if event == "aborted":
                self.engine.journal.transition(self.experiment_id, [State.INJECTED], State.ABORTED, data)
            else:
                self.engine.journal.append(self.experiment_id, event, data)
                self.engine.journal.release_holds_of(self.experiment_id)
            log.info(event, experiment_id=self.experiment_id, reason=reason)


def record_detection(
    journal: Journal, experiment_id: str, design: ExperimentDesign, measurements: list[Measurement]
) -> bool:
    """Journal `detected` the first time a detection signal holds; True once detected."""
    if not design.detection_signals:
        return False
    if journal.events(experiment_id, ["detected"]):
        return True
    raised = [v for v in evaluate_all(design.detection_signals, measurements) if v.passed]
    injected = journal.events(experiment_id, ["faults_injected"])
    if not raised or not injected:
        return False
    journal.append(
        experiment_id,
        "detected",
        {
            "detection_time_s": round(time.time() - injected[0].ts, 3),
            "signals": [v.as_dict() for v in raised],
        },
    )
    return True
