"""The engine: runs experiments through their lifecycle. It knows nothing of MCP.

Every step is journaled before it is acted on; the journal, not this process's memory,
is the source of truth, so several processes (and `recover` after a crash) agree.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableSequence, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup

from chaos_mcp.config import Settings
from chaos_mcp.contract import ExperimentDesign, validate_design
from chaos_mcp.engine import admission, recovery
from chaos_mcp.engine.errors import EngineError
from chaos_mcp.engine.footprint import Foresight, footprint, foresee_neighbours
from chaos_mcp.engine.journal import (
    ACTIVE_FAULT_STATUSES,
    IN_FORCE_STATUSES,
    ExperimentRow,
    FaultRow,
    Journal,
    JournalError,
)
from chaos_mcp.engine.lifecycle import ACTIVE_STATES, NEXT_TOOL, State, require
from chaos_mcp.engine.measure import Measurer
from chaos_mcp.engine.outcome import window_outcome
from chaos_mcp.engine.policy import Approver, PolicyRefusal, escalations
from chaos_mcp.engine.reverter import NOTHING_INJECTED, in_force, owed, revert_faults
from chaos_mcp.engine.supervisor import Supervisor, record_detection
from chaos_mcp.engine.warden import spawn_warden
from chaos_mcp.faults.base import Fault, FaultError, NotInjected, fault_from_record
from chaos_mcp.probes.base import Measurement
from chaos_mcp.scenarios.base import ScenarioContext, scenarios

log = structlog.get_logger("chaos_mcp.engine")
ARMED_KEY = admission.ARMED_KEY
SETTLE_S = 60.0  # how long rollback and abort_all wait for an injection in progress to settle

Progress = Callable[[float, float, str], Awaitable[None]]
Steps = list[dict[str, Any]]


class Engine:
    def __init__(self, settings: Settings, journal: Journal) -> None:
        self.settings = settings
        self.journal = journal
        self.measurer = Measurer(settings)
        self._task_group: TaskGroup | None = None
        self._supervisors: dict[str, Supervisor] = {}
        self._proxies_ready = False
        # inject (from its state change until its faults are journaled) and rollback of one
        # experiment never interleave in this process; across processes the journal's state decides
        self._locks: dict[str, anyio.Lock] = {}

    def _lock(self, experiment_id: str) -> anyio.Lock:
        return self._locks.setdefault(experiment_id, anyio.Lock())

    @classmethod
    @asynccontextmanager
    async def running(cls, settings: Settings) -> AsyncIterator[Engine]:
        journal = Journal(settings.journal.resolved_url())
        engine = cls(settings, journal)
        try:
            async with anyio.create_task_group() as tg:
                engine._task_group = tg
                try:
                    yield engine
                finally:
                    with anyio.CancelScope(shield=True):
                        if settings.policy.on_disconnect == "rollback":
                            await engine.revert_own(
                                "the MCP client disconnected (policy.on_disconnect = rollback)"
                            )
                    tg.cancel_scope.cancel()
        finally:
            journal.close()

    async def revert_own(self, reason: str) -> list[str]:
        """Revert every experiment this process injected that is still active; mark them aborted."""
        reverted = []
        for experiment_id, supervisor in list(self._supervisors.items()):
            supervisor.stop()
            active = [f for f in self.journal.faults(experiment_id) if f.status in IN_FORCE_STATUSES]
            if active:
                steps = await revert_faults(self.journal, active)
                if self.journal.transition(
                    experiment_id, [State.INJECTED], State.ABORTED, {"reason": reason, "steps": steps}
                ):
                    reverted.append(experiment_id)
        self._supervisors.clear()
        return reverted

    # ------------------------------------------------------------------ design
    def design(self, raw: dict[str, Any]) -> dict[str, Any]:
        design = validate_design(raw, self.settings)
        scenario = scenarios()[design.scenario]
        experiment_id = _new_id()
        try:
            faults = self._build_faults(experiment_id, design, time.time() + design.duration_s)
        except FaultError as exc:
            raise EngineError(f"design_experiment refused: the scenario cannot be built: {exc}") from None
        plan = {
            "experiment_id": None if design.dry_run else experiment_id,
            "dry_run": design.dry_run,
            "state": None if design.dry_run else State.DESIGNED.value,
            "scenario": scenario.describe() | {"parameters": design.parameters},
            "target": {
                "name": design.target_component,
                "kind": design.target_kind,
                "environment": design.environment,
            },
            "duration_s": design.duration_s,
            "faults": [f.describe() for f in faults],
            "reach": sorted({f.reach for f in faults}),  # "instance": a person may be asked at inject time
            "automatic_revert": scenario.automatic_revert,
            "steady_state": [c.text() for c in self.measurer.steady_state_criteria(design)],
            "success_criteria": [c.text() for c in design.success_criteria],
            "abort_conditions": [c.text() for c in design.abort_conditions],
            **_approval_fields(
                [e.reason for e in self._escalations(design)],
                foresee_neighbours(self.settings, design, (f.reach for f in faults)),
            ),
            "next": "measure_steady_state" if not design.dry_run else "design_experiment without dry_run",
        }
        if not design.dry_run:
            now = time.time()
            self.journal.create_experiment(
                ExperimentRow(
                    id=experiment_id,
                    target=design.target_component,
                    environment=design.environment,
                    scenario=design.scenario,
                    state=State.DESIGNED.value,
                    created_at=now,
                    updated_at=now,
                    design=design.model_dump(mode="json"),
                )
            )
            log.info(
                "experiment_designed",
                experiment_id=experiment_id,
                scenario=design.scenario,
                target=design.target_component,
            )
        return plan

    def _escalations(self, design: ExperimentDesign) -> list[Any]:
        try:
            return escalations(
                self.settings,
                design.target_component,
                design.environment,
                scenarios()[design.scenario].mutates_data,
            )
        except PolicyRefusal:
            return []

    def _context(self, experiment_id: str, design: ExperimentDesign, deadline: float) -> ScenarioContext:
        scenario = scenarios()[design.scenario]
        return ScenarioContext(
            experiment_id=experiment_id,
            target_name=design.target_component,
            target=self.settings.targets[design.target_component],
            settings=self.settings,
            parameters=scenario.Parameters.model_validate(design.parameters),
            blast_radius=design.blast_radius.model_dump(mode="json"),
            deadline=deadline,
            duration=design.duration_s,
        )

    def _build_faults(self, experiment_id: str, design: ExperimentDesign, deadline: float) -> list[Fault]:
        return scenarios()[design.scenario].build(self._context(experiment_id, design, deadline))

    async def _observe(self, experiment_id: str, design: ExperimentDesign) -> dict[str, Any] | None:
        """Ask the scenario what the system did about the fault; journal it as an observation."""
        rows = [r for r in self.journal.faults(experiment_id) if r.status == "injected"]
        if not rows:
            return None
        faults = [fault_from_record(r.record) for r in rows]
        ctx = self._context(experiment_id, design, rows[0].deadline)
        scenario = scenarios()[design.scenario]
        try:
            observation = await anyio.to_thread.run_sync(scenario.observe, ctx, faults)
        except Exception as exc:
            observation = {"error": _safe(exc, self.settings)}
        if observation is not None:
            self.journal.append(experiment_id, "observation", observation)
        return observation

    # ------------------------------------------------------------------ reading
    def load(self, experiment_id: str) -> tuple[ExperimentRow, ExperimentDesign]:
        row = self.journal.get_experiment(experiment_id)
        if row is None:
            recent = [r.id for r in self.journal.list_experiments(limit=5)]
            hint = f" Recent experiments: {', '.join(recent)}." if recent else " There are none yet."
            raise EngineError(
                f"no experiment {experiment_id!r} in the journal.{hint} "
                "Call design_experiment to create one, or list_experiments."
            )
        return row, ExperimentDesign.model_validate(row.design)

    def get(self, experiment_id: str) -> dict[str, Any]:
        row, design = self.load(experiment_id)
        events = self.journal.events(experiment_id)
        faults = self.journal.faults(experiment_id)
        return {
            "experiment_id": row.id,
            "state": row.state,
            "target": row.target,
            "environment": row.environment,
            "scenario": row.scenario,
            "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at),
            "design": design.model_dump(mode="json"),
            "faults": [
                {"id": f.id, "kind": f.record.get("kind"), "status": f.status, "deadline": _iso(f.deadline)}
                for f in faults
            ],
            **_in_force_fields(faults),
            "events": [
                {"seq": e.seq, "at": _iso(e.ts), "kind": e.kind, "data": e.data} for e in events[-50:]
            ],
        }

    def list(self, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        owing: dict[str, list[FaultRow]] = {}
        for f in self.journal.faults_with_status(IN_FORCE_STATUSES):
            owing.setdefault(f.experiment_id, []).append(f)
        return [
            {
                "experiment_id": r.id,
                "state": r.state,
                "target": r.target,
                "scenario": r.scenario,
                "environment": r.environment,
                "created_at": _iso(r.created_at),
                **_in_force_fields(owing.get(r.id, [])),
            }
            for r in self.journal.list_experiments(state=state, limit=limit)
        ]

    # ------------------------------------------------------------------ measure
    async def measure(self, experiment_id: str) -> dict[str, Any]:
        row, design = self.load(experiment_id)
        state = State(row.state)
        require("measure_steady_state", experiment_id, state)
        phase = {State.DESIGNED: "baseline", State.BASELINED: "baseline", State.INJECTED: "during"}.get(
            state, "recovery"
        )
        await self._ensure_proxies_once()
        result = await self.measurer.measure(design)
        self.journal.append(experiment_id, "measurement", {"phase": phase, **result})
        if phase == "during":
            sampled = [Measurement(**m) for m in result["measurements"]]
            record_detection(self.journal, experiment_id, design, sampled)
            observation = await self._observe(experiment_id, design)
            if observation is not None:
                result["observation"] = observation
        if phase == "baseline":
            self.journal.transition(
                experiment_id,
                [State.DESIGNED, State.BASELINED],
                State.BASELINED,
                {"steady": result["steady"]},
            )
        next_tool = {
            "baseline": "inject_failure",
            "during": "rollback (or measure again)",
            "recovery": "generate_report",
        }[phase]
        if phase == "baseline" and not result["steady"] and not design.baseline_known_degraded:
            next_tool = (
                "fix the system or re-measure: inject_failure is refused while the baseline is not "
                "steady (or design again with baseline_known_degraded=true)"
            )
        return {"experiment_id": experiment_id, "phase": phase, **result, "next": next_tool}

    # ------------------------------------------------------------------ inject
    async def inject(
        self,
        experiment_id: str,
        environment: str,
        target_component: str,
        approver: Approver | None = None,
        wait: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        row, design = self.load(experiment_id)
        scenario = scenarios()[design.scenario]
        try:
            approvals = await admission.admit(self, row, design, environment, target_component, approver)
        except JournalError as exc:
            raise await self._journal_failed(exc, design, experiment_id, []) from None
        async with self._lock(experiment_id):
            started, deadline, injected, supervisor = await self._inject_locked(
                experiment_id, design, approvals
            )
        if wait:
            await supervisor.run(progress)
        else:
            assert self._task_group is not None, "Engine.running() owns the supervisors"
            self._task_group.start_soon(supervisor.run, None)
        current = self.journal.get_experiment(experiment_id)
        result = {
            "experiment_id": experiment_id,
            "state": current.state if current else "injected",
            "injected": injected,
            "started_at": _iso(started),
            "deadline": _iso(deadline),
            "duration_s": design.duration_s,
            "approvals": approvals,
            "automatic_revert": scenario.automatic_revert,
            "next": "measure_steady_state (during the window), then rollback",
        }
        if wait:  # the window is over: say how it ended and what is next, not what was next before it
            result |= window_outcome(self.journal, experiment_id, design)
        return result

    async def _inject_locked(
        self, experiment_id: str, design: ExperimentDesign, approvals: Sequence[str]
    ) -> tuple[float, float, Sequence[str], Supervisor]:
        """The state change, the faults and their journal records; under the experiment's lock."""
        admission.check_armed(self)  # abort_all may have engaged the switch during admission
        try:
            moved = self.journal.transition(
                experiment_id, [State.BASELINED], State.INJECTED, {"approvals": approvals}
            )
        except JournalError as exc:
            raise await self._journal_failed(exc, design, experiment_id, []) from None
        if not moved:
            current = self.journal.get_experiment(experiment_id)
            if current is None or State(current.state) not in ACTIVE_STATES:
                self._release(design, experiment_id)  # the holds are no active experiment's
            # else another call injected it: the holds are that injection's, never freed here
            raise EngineError(
                f"experiment {experiment_id} changed state meanwhile (now "
                f"'{current.state if current else '?'}'); call get_experiment."
            )
        started = time.time()
        deadline = started + design.duration_s
        faults = self._build_faults(experiment_id, design, deadline)
        injected: list[str] = []
        touched: list[Fault] = []
        try:
            for position, fault in enumerate(faults):
                fault_id = f"{experiment_id}-f{position}"
                await self._inject_one(fault_id, experiment_id, position, fault, deadline, touched)
                injected.append(fault.describe())
        except JournalError as exc:
            raise await self._journal_failed(exc, design, experiment_id, touched) from None
        except Exception as exc:
            log.warning("injection_failed", experiment_id=experiment_id, error=type(exc).__name__)
            steps = await revert_faults(self.journal, self.journal.faults(experiment_id))
            self.journal.transition(
                experiment_id,
                [State.INJECTED],
                State.FAILED,
                {"error": _safe(exc, self.settings), "reverted": steps},
            )
            self._release(design, experiment_id)
            if all(s["status"] == "NOT_INJECTED" for s in steps):
                raise EngineError(
                    f"inject_failure refused before anything was changed: {_safe(exc, self.settings)}. "
                    "Nothing was injected, so there is nothing to revert. The experiment is now 'failed'; "
                    "call generate_report for the record, fix the cause, and design a new experiment."
                ) from None
            still = in_force(steps)
            outcome = (
                f"{len(still)} fault(s) could NOT be reverted and may still be in force "
                f"({', '.join(s['fault_id'] for s in still)}); run `chaos-mcp recover`"
                if still
                else "everything injected so far was reverted"
            )
            raise EngineError(
                f"injection failed and {outcome}: {_safe(exc, self.settings)}. The experiment is now "
                "'failed'; call generate_report for the record."
            ) from None
        warden = spawn_warden(self.journal.url, experiment_id, deadline)
        self.journal.append(
            experiment_id,
            "faults_injected",
            {"faults": injected, "deadline": deadline, "owner": owner(), "warden_pid": warden},
        )
        log.info("injected", experiment_id=experiment_id, faults=len(injected), deadline=deadline)
        supervisor = Supervisor(self, experiment_id, design, started, deadline)
        self._supervisors[experiment_id] = supervisor
        return started, deadline, injected, supervisor

    async def _inject_one(
        self,
        fault_id: str,
        experiment_id: str,
        position: int,
        fault: Fault,
        deadline: float,
        touched: MutableSequence[Fault],
    ) -> None:
        """prepare, write ahead, inject; a fault refused before it touched anything is `not_injected`.
        `touched` gains the fault once it may act, so a journal that fails later can revert it."""
        try:
            await fault.prepare()
        except Exception as exc:
            self.journal.write_ahead(
                fault_id, experiment_id, position, fault.to_record(), deadline, status="not_injected"
            )
            self.journal.append(
                experiment_id,
                "fault_not_injected",
                {"fault_id": fault_id, "reason": _safe(exc, self.settings), "at": "prepare"},
            )
            raise
        self._may_still_inject(experiment_id)
        self.journal.write_ahead(fault_id, experiment_id, position, fault.to_record(), deadline)
        touched.append(fault)
        try:
            await fault.inject()
        except NotInjected as exc:
            self.journal.set_fault_status(fault_id, "not_injected")
            self.journal.append(
                experiment_id,
                "fault_not_injected",
                {"fault_id": fault_id, "reason": _safe(exc, self.settings), "at": "inject"},
            )
            raise
        self.journal.set_fault_status(fault_id, "injected")

    def _may_still_inject(self, experiment_id: str) -> None:
        """Read again right before each write-ahead: the kill switch or a rollback (perhaps from
        another process) may have stopped this injection since it was admitted."""
        admission.check_armed(self)
        current = self.journal.get_experiment(experiment_id)
        if current is None or State(current.state) != State.INJECTED:
            raise EngineError(
                f"experiment {experiment_id} was stopped while it was being injected (now "
                f"'{current.state if current else '?'}'); call get_experiment."
            )

    async def _ensure_proxies_once(self) -> None:
        """Probes of proxied targets go through their proxies, so those must exist before measuring."""
        if self._proxies_ready or not any(t.proxy for t in self.settings.targets.values()):
            return
        from chaos_mcp.engine.proxies import ensure_proxies

        await ensure_proxies(self.settings)
        self._proxies_ready = True

    async def approval_question(self, experiment_id: str) -> str | None:
        """The question a person must answer before this injection, or None if none is needed."""
        row, design = self.load(experiment_id)
        if State(row.state) != State.BASELINED:
            return None
        try:
            needed = escalations(
                self.settings,
                design.target_component,
                design.environment,
                scenarios()[design.scenario].mutates_data,
            )
            needed += (await footprint(self, experiment_id, design)).escalations
        except (PolicyRefusal, EngineError):
            return None
        if not needed:
            return None
        return (
            f"Approve chaos injection? {design.scenario} on {design.target_component} ({design.environment}) "
            f"for {design.duration_s:g}s. Hypothesis: {design.hypothesis} "
            f"Needs approval because: {'; '.join(e.reason for e in needed)}."
        )

    async def _journal_failed(
        self, exc: JournalError, design: ExperimentDesign, experiment_id: str, touched: Sequence[Fault]
    ) -> EngineError:
        """No half-state when the journal cannot be written (full disk, read-only, damaged): what was
        injected is reverted from memory and the holds are freed (if even that cannot be written, the
        experiment is not `injected` in the journal, and `recover` frees its holds as stale)."""
        log.error("journal_write_failed", experiment_id=experiment_id, error=str(exc))
        for fault in reversed(touched):  # from memory: the journal may not even be readable
            with contextlib.suppress(Exception), anyio.fail_after(30):
                await fault.revert()
        with contextlib.suppress(JournalError):
            self.journal.transition(experiment_id, [State.INJECTED], State.FAILED, {"error": str(exc)})
        with contextlib.suppress(JournalError):
            self._release(design, experiment_id)
        done = "everything injected so far was reverted" if touched else "nothing was injected"
        return EngineError(
            f"{exc}. {done}; make room (or fix the journal's file and permissions), then design the "
            "experiment again."
        )

    def _release(self, design: ExperimentDesign, experiment_id: str) -> None:
        """Free the experiment's targets and the resources its faults acted on."""
        self.journal.release_holds_of(experiment_id)

    # ------------------------------------------------------------------ rollback
    async def rollback(self, experiment_id: str) -> dict[str, Any]:
        """Waits (bounded) for an injection of this experiment in progress here to settle first."""
        with anyio.move_on_after(SETTLE_S) as waiting:
            await self._lock(experiment_id).acquire()
        if waiting.cancelled_caught:
            raise EngineError(
                f"experiment {experiment_id} is still being injected after {SETTLE_S:g}s; nothing was "
                "reverted yet. Call rollback again in a moment, or abort_all to stop everything."
            )
        try:
            return await self._rollback_locked(experiment_id)
        finally:
            self._lock(experiment_id).release()

    async def _rollback_locked(self, experiment_id: str) -> dict[str, Any]:
        row, design = self.load(experiment_id)
        state = State(row.state)
        if state in (State.DESIGNED, State.BASELINED, State.CANCELLED):
            withdrawn = self._withdraw(experiment_id, design, state)
            if withdrawn is None:  # the state moved meanwhile (another process): act on the new one
                row, _ = self.load(experiment_id)
                state = State(row.state)
                if state == State.CANCELLED:
                    withdrawn = self._withdraw(experiment_id, design, state)
            if withdrawn is not None:
                return withdrawn
        require("rollback", experiment_id, state)
        supervisor = self._supervisors.pop(experiment_id, None)
        if supervisor is not None:
            supervisor.stop()
        reverted_at = time.time()
        steps = await revert_faults(self.journal, self.journal.faults(experiment_id))
        prior = [e.data for e in self.journal.events(experiment_id, ["rollback"])]
        if prior and state in (State.ROLLED_BACK, State.REPORTED, State.ABORTED):
            result = prior[-1] | {"steps": steps, "repeated": True}
            return result | {"status": _overall(steps, result.get("recovery", {}))}
        if all(s["status"] == "NOT_INJECTED" for s in steps):
            return self._nothing_to_roll_back(experiment_id, design, steps, state)
        revert_time = _revert_time(self.journal, experiment_id, reverted_at)
        still = in_force(steps)
        recovery_result: dict[str, Any]
        if still:
            recovery_result = {
                "recovered": False,
                "recovery_time_s": None,
                "samples": 0,
                "why": f"not measured: {len(still)} fault(s) still in force "
                f"({', '.join(s['fault_id'] for s in still)}); fix the cause, then run `chaos-mcp recover`",
                "criteria": [],
            }
        else:
            recovery_result = await recovery.measure_recovery(self, design, revert_time, experiment_id)
        integrity = await recovery.check_integrity(self, experiment_id, design)
        recovery_result = recovery.judge(recovery_result, integrity)
        status = _overall(steps, recovery_result, integrity)
        result = {
            "experiment_id": experiment_id,
            "status": status,
            "steps": steps,
            "recovery": recovery_result,
            "integrity": integrity,
            "reverted_at": _iso(revert_time),
        }
        lost = await _journal_proxy_losses(self.journal, experiment_id, revert_time)
        if lost:
            result |= {"proxy_lost": lost, "note": "; ".join(loss["message"] for loss in lost)}
        self.journal.append(experiment_id, "rollback", result)
        stopped = recovery_result.get("aborted") if state != State.FAILED else None  # recovery-phase abort
        self.journal.transition(
            experiment_id,
            [State.INJECTED, State.ABORTED, State.FAILED],
            State.ABORTED if stopped else State.ROLLED_BACK if state != State.FAILED else State.FAILED,
            {"status": status} | (stopped or {}),
        )
        self._release(design, experiment_id)
        return result | {
            "state": (self.journal.get_experiment(experiment_id) or row).state,
            "next": "generate_report",
        }

    def _withdraw(self, experiment_id: str, design: ExperimentDesign, state: State) -> dict[str, Any] | None:
        """rollback before any injection withdraws the experiment: `cancelled`, its targets free.
        None when it was injected meanwhile (the state changed under us)."""
        withdrawn = state == State.CANCELLED or self.journal.transition(
            experiment_id,
            [State.DESIGNED, State.BASELINED],
            State.CANCELLED,
            {"reason": f"withdrawn by rollback while {state.value}", "from": state.value},
        )
        if not withdrawn:
            return None
        self._release(design, experiment_id)
        before = "already cancelled" if state == State.CANCELLED else f"it was {state.value}"
        targets = ", ".join(dict.fromkeys([design.target_component, *design.blast_radius.targets]))
        return {
            "experiment_id": experiment_id,
            "state": State.CANCELLED.value,
            "status": "WITHDRAWN",
            "withdrawn": True,
            "repeated": state == State.CANCELLED,
            "steps": [],
            "note": (
                f"withdrawn before any injection ({before}): "
                f"nothing was injected, so nothing was reverted; its targets ({targets}) are free for "
                "another experiment"
            ),
            "next": NEXT_TOOL[State.CANCELLED],
        }

    def _nothing_to_roll_back(
        self, experiment_id: str, design: ExperimentDesign, steps: Steps, state: State
    ) -> dict[str, Any]:
        if state == State.INJECTED and not steps:
            # `injected` with no fault written: another process is injecting it (or died doing so).
            # Failing it first makes that injection refuse before its next write-ahead, and the holds
            # are freed by that state change only, never under a fault about to be injected.
            self.journal.transition(
                experiment_id,
                [State.INJECTED],
                State.FAILED,
                {"reason": "rolled back while its injection had written no fault yet"},
            )
        refused = [e.data.get("reason") for e in self.journal.events(experiment_id, ["fault_not_injected"])]
        note = NOTHING_INJECTED + (f" ({refused[-1]})" if refused and refused[-1] else "")
        result = {
            "experiment_id": experiment_id,
            "status": "COMPLETE",
            "steps": steps,
            "note": f"{note}; there is nothing to revert and no recovery to measure",
            "recovery": {},
            "integrity": {},
        }
        self.journal.append(experiment_id, "rollback", result)
        self._release(design, experiment_id)
        current = self.journal.get_experiment(experiment_id)
        return result | {"state": current.state if current else "failed", "next": "generate_report"}

    # ------------------------------------------------------------------ kill switch
    async def abort_all(self, reason: str) -> dict[str, Any]:
        started = time.monotonic()
        self.journal.set_control(ARMED_KEY, "false")
        # injections in progress here settle first (each re-reads the switch before its next fault),
        # so what they wrote ahead is reverted below
        with anyio.move_on_after(SETTLE_S):
            for lock in list(self._locks.values()):
                async with lock:
                    pass
        for supervisor in list(self._supervisors.values()):
            supervisor.stop()
        self._supervisors.clear()
        injected = {r.id for r in self.journal.list_experiments(state=State.INJECTED, limit=1000)}
        faults = owed(self.journal) + [  # reverted at a deadline but not rolled back: check them too
            f for e in sorted(injected) for f in self.journal.faults(e) if f.status == "reverted"
        ]
        steps = await revert_faults(self.journal, faults)
        active = {f.experiment_id for f in faults if f.status in ACTIVE_FAULT_STATUSES}
        experiments = sorted(injected | active)
        for experiment_id in experiments:
            self.journal.transition(
                experiment_id,
                [State.INJECTED],
                State.ABORTED,
                {"reason": f"abort_all: {reason}", "by": "kill switch"},
            )
        swept = await _sweep_stray_toxics(self.settings, self.journal)
        elapsed = time.monotonic() - started
        log.warning("abort_all", reason=reason, experiments=len(experiments), seconds=round(elapsed, 3))
        return {
            "aborted": experiments,
            "reverted": steps,
            "removed_stray_toxics": swept,
            "still_in_force": [
                {"fault_id": s["fault_id"], "description": s["description"], "detail": s["detail"]}
                for s in in_force(steps)
            ],
            "seconds": round(elapsed, 3),
            "armed": False,
            "next": "rollback each aborted experiment to measure recovery; re-arm with `chaos-mcp arm`",
        }

    def arm(self) -> None:
        self.journal.set_control(ARMED_KEY, "true")

    def armed(self) -> bool:
        return self.journal.get_control(ARMED_KEY) != "false"


def owner() -> dict[str, Any]:
    """Who injected: enough for a later `serve` to tell a live server's faults from a dead one's."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


async def _sweep_stray_toxics(settings: Settings, journal: Journal) -> list[str]:
    """Toxics added outside any experiment go too: the kill switch leaves nothing in force."""
    if not any(t.proxy for t in settings.targets.values()):
        return []
    from chaos_mcp.engine.proxies import sweep_stray_toxics  # httpx loads only when needed

    return await sweep_stray_toxics(settings, journal)


async def _journal_proxy_losses(
    journal: Journal, experiment_id: str, revert_time: float
) -> list[dict[str, Any]]:
    """Proxies whose daemon restarted (and so dropped the toxics) inside the window; journaled."""
    faults = journal.faults(experiment_id)
    if not any(str(f.record.get("kind")).startswith("proxy.") for f in faults):
        return []
    from chaos_mcp.engine.proxy_loss import proxy_losses  # httpx loads only when needed

    window_end = min([revert_time, *(f.deadline for f in faults)])
    lost = await proxy_losses(faults, window_end)
    for loss in lost:
        journal.append(experiment_id, "proxy_lost", loss)
        log.warning("proxy_lost", experiment_id=experiment_id, proxy=loss["proxy"], at=loss["at"])
    return lost


def _new_id() -> str:
    return f"exp-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _safe(exc: BaseException, settings: Settings) -> str:
    from chaos_mcp.secrets import redact_text

    return redact_text(f"{type(exc).__name__}: {exc}", settings.secrets())[:500]


def _revert_time(journal: Journal, experiment_id: str, fallback: float) -> float:
    """When the faults were actually reverted: the abort/deadline revert if one happened earlier."""
    times = [e.ts for e in journal.events(experiment_id, ["auto_reverted", "aborted"])]
    return min(times) if times else fallback


def _approval_fields(policy: list[str], neighbours: Foresight) -> dict[str, Any]:
    """The plan's `escalations` and one sentence on whether inject_failure will ask a person."""
    reasons = policy + neighbours.escalations
    if neighbours.refusal:
        approval = f"inject_failure will refuse this as things stand: {neighbours.refusal}"
    elif reasons:
        approval = (
            f"inject_failure will ask a person to approve ({'; '.join(reasons)}); a client that cannot ask "
            "is refused"
        )
    else:
        approval = "no approval needed"
    if neighbours.unknown:
        approval += (
            "; whether this instance-wide fault also reaches another environment's target or a target "
            f"outside the blast radius will be checked at inject ({neighbours.unknown})"
        )
    return {"escalations": reasons, "approval": approval}


def _in_force_fields(faults: list[FaultRow]) -> dict[str, Any]:
    """What of an experiment may still act on the system, for get_experiment and list_experiments."""
    owing = [f for f in faults if f.status in IN_FORCE_STATUSES]
    failed = [f.id for f in owing if f.status == "revert_failed"]
    fields: dict[str, Any] = {"faults_in_force": [f.id for f in owing], "revert_failed": failed}
    if failed:
        fields["warning"] = (
            f"{len(failed)} fault(s) could not be reverted and may still be in force: {', '.join(failed)}. "
            "Fix the cause, then run `chaos-mcp recover` (it retries) or call abort_all."
        )
    return fields


def _overall(
    steps: list[dict[str, Any]], recovery_result: dict[str, Any], integrity: dict[str, Any] | None = None
) -> str:
    if any(s["status"] == "FAILED" for s in steps):
        return "FAILED"
    if any(s["status"] in ("PARTIAL", "UNVERIFIED") for s in steps):
        return "PARTIAL"
    if not recovery_result.get("recovered", True) or (integrity and not integrity.get("intact", True)):
        return "PARTIAL"
    return "COMPLETE"


__all__ = ["ACTIVE_STATES", "Engine", "EngineError"]
