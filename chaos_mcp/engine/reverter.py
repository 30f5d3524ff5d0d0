"""Revert faults from their journal records, concurrently, and verify each one."""

from __future__ import annotations

from typing import Any

import anyio
import structlog

from chaos_mcp.engine.journal import FaultRow, Journal
from chaos_mcp.faults.base import FaultError, fault_from_record

log = structlog.get_logger("chaos_mcp.revert")
REVERT_TIMEOUT = 10.0


async def revert_faults(journal: Journal, rows: list[FaultRow]) -> list[dict[str, Any]]:
    """Revert every row (idempotent), verify it is gone, record the outcome; one step per fault."""
    steps: list[dict[str, Any]] = [{} for _ in rows]

    async def one(index: int, row: FaultRow) -> None:
        steps[index] = await _revert_one(journal, row)

    async with anyio.create_task_group() as tg:
        for index, row in enumerate(rows):
            tg.start_soon(one, index, row)
    return steps


async def _revert_one(journal: Journal, row: FaultRow) -> dict[str, Any]:
    step: dict[str, Any] = {
        "fault_id": row.id,
        "experiment_id": row.experiment_id,
        "kind": row.record.get("kind"),
        "description": row.record.get("kind"),
    }
    try:
        fault = fault_from_record(row.record)
        step["description"] = fault.describe()
        with anyio.fail_after(REVERT_TIMEOUT):
            if row.status != "reverted":
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
            "detail": "reverted, but verification still sees the fault in effect",
        }
    detail = "already reverted; verified gone" if row.status == "reverted" else "reverted and verified gone"
    if row.status != "reverted":
        journal.set_fault_status(row.id, "reverted")
        journal.append(row.experiment_id, "fault_reverted", {"fault_id": row.id})
    return step | {"status": "COMPLETE", "detail": detail}


def _failed(journal: Journal, row: FaultRow, step: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    journal.set_fault_status(row.id, "revert_failed")
    log.error("revert_failed", fault_id=row.id, error=type(exc).__name__)
    return step | {
        "status": "FAILED",
        "detail": f"revert failed: {type(exc).__name__}; run `chaos-mcp recover` or revert by hand "
        "(see the rollback plan)",
    }
