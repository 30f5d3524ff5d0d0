from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.faults.base import FaultError, fault_from_record
from chaos_mcp.faults.schedule import ConstraintConflict, RemoveFaculty, SolverTimeLimit
from chaos_mcp.schedule import api, overlay


def removal(target: ScheduleTarget, ids: list[str]) -> RemoveFaculty:
    return RemoveFaculty(target_name="sched", target=target.model_dump(), faculty_ids=ids)


def in_fresh_process(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_remove_faculty_injects_verifies_and_reverts_idempotently(target: ScheduleTarget) -> None:
    who = api.pick_faculty("sched", target, "highest_utilized")
    fault = removal(target, who)

    async def lifecycle() -> list[bool]:
        await fault.prepare()
        seen = [await fault.verify()]
        await fault.inject()
        seen.append(await fault.verify())
        await fault.revert()
        await fault.revert()
        seen.append(await fault.verify())
        return seen

    assert anyio.run(lifecycle) == [False, True, False]


def test_metrics_see_the_removal_while_it_is_in_effect(target: ScheduleTarget) -> None:
    before = api.schedule_metrics("sched", target)
    fault = removal(target, api.pick_faculty("sched", target, "highest_utilized"))
    anyio.run(fault.inject)
    during = api.schedule_metrics("sched", target)
    anyio.run(fault.revert)
    assert before["uncovered_slots"] == 0 and during["uncovered_slots"] > 0
    assert during["coverage_pct"] < 100 and during["faculty_active"] == before["faculty_active"] - 1
    assert api.schedule_metrics("sched", target) == before


def test_another_process_measures_the_overlay_and_reverts_from_the_record_alone(
    target: ScheduleTarget,
) -> None:
    fault = removal(target, ["F003"])
    anyio.run(fault.inject)
    record = json.dumps(fault.to_record())
    measured = in_fresh_process(
        "import json; from chaos_mcp.config import ScheduleTarget; from chaos_mcp.schedule import api; "
        f"t = ScheduleTarget.model_validate({target.model_dump()!r}); "
        "print(json.dumps(api.schedule_metrics('sched', t)))"
    )
    assert json.loads(measured)["uncovered_slots"] > 0
    in_fresh_process(
        "import anyio, json; from chaos_mcp.faults.base import fault_from_record; "
        f"fault = fault_from_record(json.loads({record!r})); anyio.run(fault.revert)"
    )
    assert overlay.read_overlays("sched") == []
    assert not anyio.run(fault_from_record(json.loads(record)).verify)


def test_removing_an_unknown_faculty_is_refused_before_anything_changes(target: ScheduleTarget) -> None:
    with pytest.raises(FaultError, match="unknown faculty id"):
        anyio.run(removal(target, ["F999"]).prepare)
    assert overlay.read_overlays("sched") == []


def test_postgres_sources_are_refused_with_a_clear_error() -> None:
    pg = ScheduleTarget(kind="schedule", environment="test", source="postgres")
    with pytest.raises(FaultError, match="issue 7"):
        anyio.run(removal(pg, ["F001"]).inject)


def test_constraint_conflict_is_named_by_validation_and_does_not_crash_metrics(
    target: ScheduleTarget,
) -> None:
    for conflict, code in (
        ("missing_credential", "conflict_unheld_credential"),
        ("min_faculty_exceeds_available", "conflict_min_faculty"),
    ):
        fault = ConstraintConflict(target_name="sched", target=target.model_dump(), conflict=conflict)
        anyio.run(fault.inject)
        assert anyio.run(fault.verify)
        report = api.validate("sched", target)
        metrics = api.schedule_metrics("sched", target)
        anyio.run(fault.revert)
        assert [c["code"] for c in report["conflicts"]] == [code]  # type: ignore[index]
        assert metrics["validation_errors"] >= 1 and metrics["coverage_pct"] < 100
        assert metrics["defense_level"] >= 2
    assert api.validate("sched", target)["conflicts"] == []


def test_a_forced_solver_limit_makes_repair_answer_gracefully(target: ScheduleTarget) -> None:
    fault = SolverTimeLimit(target_name="sched", target=target.model_dump(), seconds=0.001)
    anyio.run(fault.inject)
    who = api.pick_faculty("sched", target, "most_critical_pair")
    result = api.suggest_repair("sched", target, who, 30.0)
    anyio.run(fault.revert)
    assert result["status"] in ("optimal", "feasible", "timeout_no_solution", "no_feasible_repair")
    assert result["time_limit_s"] == 0.001
    if result["status"] == "timeout_no_solution":
        assert result["assignments"] == [] and result["reasons"]


def test_two_processes_adding_overlays_at_once_keep_both(target: ScheduleTarget) -> None:
    code = (
        "import sys; from chaos_mcp.schedule import overlay; "
        "[overlay.add_overlay('sched', {'id': f'{sys.argv[1]}-{i}', 'kind': 'noop'}) for i in range(40)]"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, tag]) for tag in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(overlay.read_overlays("sched")) == 80


def test_a_corrupt_working_copy_is_reported_with_its_path(private_state_dir: Path) -> None:
    path = overlay.overlay_path("sched")
    path.write_text("{broken")
    with pytest.raises(overlay.OverlayError, match="delete it"):
        overlay.read_overlays("sched")
