"""Revert faults from their journal records, concurrently, and verify each one against the system.

The journal's status is a claim, not the truth: a fault the journal calls `reverted` is checked
with `verify()` and reverted again if it is in effect; one whose revert failed is retried; one
that was refused before it changed anything (`not_injected`) is never reverted.

Step statuses: COMPLETE (gone, verified), FAILED (still in force), PARTIAL (restored except rows
left for a person), NOT_INJECTED (nothing was ever changed), UNVERIFIED (journal says reverted,
the system could not be asked).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import structlog

from chaos_mcp.engine.journal import IN_FORCE_STATUSES, INACTIVE_STATES, FaultRow, Journal
from chaos_mcp.faults.base import Fault, FaultError, fault_from_record

log = structlog.get_logger("chaos_mcp.revert")
REVERT_TIMEOUT = 10.0
RECHECK_WINDOW = 24 * 3600.0
"""How far back `recover` and `serve` re-verify faults the journal calls reverted (the newest RECHECK_MAX)."""
RECHECK_MAX = 200
CONCURRENCY = 16
"""Reverts and verifications at once: each may hold a connection to a target."""
SETTLED = ("COMPLETE", "PARTIAL", "NOT_INJECTED", "UNVERIFIED")
"""Step statuses after which none of the fault's own changes act: PARTIAL leaves only rows that someone
else changed meanwhile (a person decides those), so it is settled, not in force."""
NOTHING_INJECTED = "nothing was injected: it was refused before it changed anything"


async def revert_faults(journal: Journal, rows: list[FaultRow]) -> list[dict[str, Any]]:
    """Revert every row (idempotent), verify it is gone, record the outcome; one step per fault."""
    steps: list[dict[str, Any]] = [{} for _ in rows]
    limiter = anyio.CapacityLimiter(CONCURRENCY)

    async def one(index: int, row: FaultRow) -> None:
        async with limiter:
            steps[index] = await _revert_one(journal, row)

    async with anyio.create_task_group() as tg:
        for index, row in enumerate(rows):
            tg.start_soon(one, index, row)
    return steps


def owed(journal: Journal, recheck_since: float | None = None) -> list[FaultRow]:
    """Every fault whose revert is owed, then (with `recheck_since`) those reverted since then that are
    worth asking the system about again.

    A reverted fault is not rechecked while an in-force fault of the same kind and description exists:
    that fault explains the effect, and reverting the old record would undo a live experiment.
    """
    in_force = journal.faults_with_status(IN_FORCE_STATUSES)
    if recheck_since is None:
        return in_force
    live = {(r.record.get("kind"), _description(r)) for r in in_force}
    recent = journal.faults_with_status(("reverted",), since=recheck_since)[-RECHECK_MAX:]
    reverted = [r for r in recent if (r.record.get("kind"), _description(r)) not in live]
    return in_force + reverted


def recheck_since() -> float:
    return time.time() - RECHECK_WINDOW


def in_force(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps after which a fault may still act on the system."""
    return [s for s in steps if s.get("status") not in SETTLED]


def _description(row: FaultRow) -> str:
    try:
        return fault_from_record(row.record).describe()
    except Exception:
        return str(row.record.get("kind"))


async def _revert_one(journal: Journal, row: FaultRow) -> dict[str, Any]:
    step: dict[str, Any] = {
        "fault_id": row.id,
        "experiment_id": row.experiment_id,
        "kind": row.record.get("kind"),
        "description": row.record.get("kind"),
    }
    if row.status == "not_injected":
        return step | {"status": "NOT_INJECTED", "detail": NOTHING_INJECTED}
    try:
        fault = fault_from_record(row.record)
        step["description"] = fault.describe()
        with anyio.fail_after(REVERT_TIMEOUT):
            if row.status == "reverted":
                found = await _still_in_effect(fault)
                if found is None:
                    return step | {"status": "UNVERIFIED", "detail": "journal says reverted; could not check"}
                if not found:
                    return step | {"status": "COMPLETE", "detail": "already reverted; verified gone"}
                log.warning("fault_in_effect_after_revert", fault_id=row.id)
                journal.append(row.experiment_id, "fault_found_in_effect", {"fault_id": row.id})
            elif row.status == "revert_failed" and await _still_in_effect(fault) is False:
                # Settled outside chaos-mcp since: reverting again could undo what the person did
                # (a revert restores the state captured before the fault, which may be stale now).
                journal.set_fault_status(row.id, "reverted")
                journal.append(row.experiment_id, "fault_reverted", {"fault_id": row.id, "found_gone": True})
                _free_if_over(journal, row.experiment_id)
                return step | {
                    "status": "COMPLETE",
                    "detail": "an earlier revert had failed; the fault is no longer in effect (settled "
                    "outside chaos-mcp), verified gone",
                }
            await fault.revert()
            still_active = False if fault.one_shot else await fault.verify()
    except FaultError as exc:
        conflicts = getattr(exc, "conflicts", None)
        if not conflicts:
            return _failed(journal, row, step, exc)
        journal.set_fault_status(row.id, "conflict")
        journal.append(row.experiment_id, "restore_conflict", {"fault_id": row.id, "conflicts": conflicts})
        return step | {
            "status": "PARTIAL",
            "detail": f"{exc} Everything else was restored; these rows are left for a person.",
            "conflicts": conflicts,
        }
    except Exception as exc:  # a revert that fails is data for the report, not a crash
        return _failed(journal, row, step, exc)
    if still_active:
        journal.set_fault_status(row.id, "revert_failed")
        return step | {
            "status": "FAILED",
            "detail": "reverted, but verification still sees the fault in effect; find what else holds "
            "it (another experiment or a person), settle it, then run `chaos-mcp recover`",
        }
    if row.status == "reverted":
        journal.append(row.experiment_id, "fault_reverted", {"fault_id": row.id, "again": True})
        return step | {"status": "COMPLETE", "detail": "found in effect although reverted; reverted again"}
    detail = "reverted and verified gone"
    if row.status == "revert_failed":
        detail = "an earlier revert had failed; retried, reverted and verified gone"
    journal.set_fault_status(row.id, "reverted")
    journal.append(row.experiment_id, "fault_reverted", {"fault_id": row.id})
    _free_if_over(journal, row.experiment_id)
    return step | {"status": "COMPLETE", "detail": detail}


def _free_if_over(journal: Journal, experiment_id: str) -> None:
    """A retry that succeeded after the experiment ended frees the targets its hold still kept."""
    experiment = journal.get_experiment(experiment_id)
    if experiment is not None and experiment.state in INACTIVE_STATES:
        journal.release_holds_of(experiment_id)


async def _still_in_effect(fault: Fault) -> bool | None:
    """verify() of a fault the journal calls reverted; None when the system cannot be asked."""
    if fault.one_shot:
        return False  # nothing to undo: verify() says whether it took effect, not whether it acts
    try:
        return await fault.verify()
    except Exception as exc:
        log.warning("verify_failed", kind=fault.kind, error=type(exc).__name__)
        return None


def _failed(journal: Journal, row: FaultRow, step: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    journal.set_fault_status(row.id, "revert_failed")
    log.error("revert_failed", fault_id=row.id, error=type(exc).__name__)
    # A FaultError's message is written for people and carries no credentials; anything else is named only.
    reason = str(exc).splitlines()[0][:300] if isinstance(exc, FaultError) else type(exc).__name__
    if isinstance(exc, TimeoutError):
        reason = f"no answer within {REVERT_TIMEOUT:g}s"
    return step | {
        "status": "FAILED",
        "detail": f"revert failed: {reason}; the fault may still be in force. Fix the cause, then run "
        "`chaos-mcp recover` (it retries), or revert by hand (see the rollback plan)",
    }
