"""Schedule-domain chaos: the spec's N-1 and N-2 removals, solver timeout, constraint conflict.

Every fault here is an overlay on the schedule target's working copy (chaos_mcp.faults.schedule),
so any process sees it and any process can remove it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chaos_mcp.config import ScheduleTarget, Target
from chaos_mcp.faults.base import Fault, fault_from_record
from chaos_mcp.scenarios.base import Scenario, ScenarioContext, register_scenario

CONFLICTS = ("missing_credential", "min_faculty_exceeds_available")


class RemovalOne(BaseModel):
    model_config = ConfigDict(extra="forbid")
    faculty: str | None = Field(None, description="faculty id to remove; default: the highest-utilized")


class RemovalTwo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    faculty: list[str] | None = Field(
        None, min_length=2, max_length=2, description="two faculty ids; default: the most critical pair"
    )


class SolverLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(0.01, gt=0, le=5, description="the solver's forced time limit, in seconds (≤ 5)")
    faculty: str | None = Field(
        None, description="faculty id whose absence needs a repair; default: the busiest"
    )


class Conflict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conflict: str = Field(
        "missing_credential",
        description="missing_credential: a service requires a credential nobody holds; "
        "min_faculty_exceeds_available: a service needs more faculty than exist",
    )
    service_id: str | None = Field(None, description="the service to make contradictory; default: the first")

    @field_validator("conflict")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CONFLICTS:
            raise ValueError(f"conflict must be one of {', '.join(CONFLICTS)}")
        return value


def _schedule(target: Target) -> ScheduleTarget:
    assert isinstance(target, ScheduleTarget)
    return target


def _overlay(ctx: ScenarioContext, kind: str, suffix: str, **fields: Any) -> Fault:
    """A working-copy overlay fault whose record alone is enough to remove it again."""
    return fault_from_record(
        {
            "kind": kind,
            "fields": {
                "target_name": ctx.target_name,
                "target": _schedule(ctx.target).model_dump(mode="json"),
                "overlay_id": f"{ctx.experiment_id}-{suffix}",
                **fields,
            },
        }
    )


def _removal(ctx: ScenarioContext, faculty_ids: list[str]) -> Fault:
    return _overlay(ctx, "schedule.remove_faculty", "removal", faculty_ids=faculty_ids)


def _pick(ctx: ScenarioContext, how: str) -> list[str]:
    from chaos_mcp.schedule.api import pick_faculty

    return pick_faculty(ctx.target_name, _schedule(ctx.target), how)


def _suggested_repair(ctx: ScenarioContext, faults: list[Fault]) -> dict[str, object]:
    """The coverage the system proposes for the faculty these faults removed."""
    from chaos_mcp.schedule.api import suggest_repair

    removed = [f for fault in faults for f in getattr(fault, "faculty_ids", [])]
    return {"suggested_repair": suggest_repair(ctx.target_name, _schedule(ctx.target), removed, 10.0)}


class _RemovalScenario(Scenario):
    experiment_type = "schedule"
    target_kinds = frozenset({"schedule"})

    def observe(self, ctx: ScenarioContext, faults: list[Fault]) -> dict[str, object]:
        return _suggested_repair(ctx, faults)


@register_scenario
class N1Removal(_RemovalScenario):
    name = "n1_removal"
    title = "N-1 Removal"
    purpose = "Single faculty absence: test coverage maintenance"
    Parameters = RemovalOne
    automatic_revert = "the faculty member's absence overlay is removed from the working copy"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        assert isinstance(params, RemovalOne)
        return [_removal(ctx, [params.faculty] if params.faculty else _pick(ctx, "highest_utilized"))]


@register_scenario
class N2Removal(_RemovalScenario):
    name = "n2_removal"
    title = "N-2 Removal"
    purpose = "Two faculty absent: test cascade prevention"
    Parameters = RemovalTwo
    automatic_revert = "both faculty members' absence overlay is removed from the working copy"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        assert isinstance(params, RemovalTwo)
        return [_removal(ctx, list(params.faculty or _pick(ctx, "most_critical_pair")))]


@register_scenario
class SolverTimeout(_RemovalScenario):
    name = "solver_timeout"
    title = "Solver Timeout"
    purpose = "Schedule generation: test timeout recovery (the repair must answer gracefully)"
    Parameters = SolverLimit
    automatic_revert = "the forced solver limit and the absence overlay are removed from the working copy"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        assert isinstance(params, SolverLimit)
        limit = _overlay(ctx, "schedule.solver_time_limit", "solver-limit", seconds=params.seconds)
        removed = [params.faculty] if params.faculty else _pick(ctx, "highest_utilized")
        return [limit, _removal(ctx, removed)]


@register_scenario
class ConstraintConflict(Scenario):
    name = "constraint_conflict"
    title = "Constraint Conflict"
    experiment_type = "schedule"
    target_kinds = frozenset({"schedule"})
    purpose = "ACGME rules: test validation robustness (the conflict must be named, not crash)"
    Parameters = Conflict
    automatic_revert = "the contradictory requirement is removed from the working copy"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        assert isinstance(params, Conflict)
        return [
            _overlay(
                ctx,
                "schedule.constraint_conflict",
                "conflict",
                conflict=params.conflict,
                service_id=params.service_id,
            )
        ]

    def observe(self, ctx: ScenarioContext, faults: list[Fault]) -> dict[str, object]:
        from chaos_mcp.schedule.api import validate

        found = validate(ctx.target_name, _schedule(ctx.target))
        problems = found["problems"]
        count = len(problems) if isinstance(problems, list) else 0
        return {"validation": {"conflicts": found["conflicts"], "problems": count}}
