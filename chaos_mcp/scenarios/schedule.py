"""Schedule-domain chaos: the spec's N-1 and N-2 removals, solver timeout, constraint conflict."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chaos_mcp.config import ScheduleTarget, Target
from chaos_mcp.faults.base import Fault, fault_from_record
from chaos_mcp.scenarios.base import Scenario, ScenarioContext, register_scenario


class RemovalOne(BaseModel):
    model_config = ConfigDict(extra="forbid")
    faculty: str | None = Field(None, description="faculty id to remove; default: the highest-utilized")


class RemovalTwo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    faculty: list[str] | None = Field(
        None, min_length=2, max_length=2, description="two faculty ids; default: the most critical pair"
    )


def _schedule(target: Target) -> ScheduleTarget:
    assert isinstance(target, ScheduleTarget)
    return target


def _removal(ctx: ScenarioContext, faculty_ids: list[str]) -> Fault:
    target = _schedule(ctx.target)
    return fault_from_record(
        {
            "kind": "schedule.remove_faculty",
            "fields": {
                "target_name": ctx.target_name,
                "target": target.model_dump(mode="json"),
                "faculty_ids": faculty_ids,
                "overlay_id": f"{ctx.experiment_id}-removal",
            },
        }
    )


@register_scenario
class N1Removal(Scenario):
    name = "n1_removal"
    title = "N-1 Removal"
    experiment_type = "schedule"
    target_kinds = frozenset({"schedule"})
    purpose = "Single faculty absence: test coverage maintenance"
    Parameters = RemovalOne
    automatic_revert = "the faculty member's absence overlay is removed from the working copy"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        from chaos_mcp.schedule.api import pick_faculty

        params = ctx.parameters
        assert isinstance(params, RemovalOne)
        chosen = (
            [params.faculty]
            if params.faculty
            else pick_faculty(ctx.target_name, _schedule(ctx.target), "highest_utilized")
        )
        return [_removal(ctx, chosen)]

    def observe(self, ctx: ScenarioContext, faults: list[Fault]) -> dict[str, object]:
        return _observe_removal(ctx, faults)


@register_scenario
class N2Removal(Scenario):
    name = "n2_removal"
    title = "N-2 Removal"
    experiment_type = "schedule"
    target_kinds = frozenset({"schedule"})
    purpose = "Two faculty absent: test cascade prevention"
    Parameters = RemovalTwo
    automatic_revert = "both faculty members' absence overlay is removed from the working copy"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        from chaos_mcp.schedule.api import pick_faculty

        params = ctx.parameters
        assert isinstance(params, RemovalTwo)
        chosen = params.faculty or pick_faculty(ctx.target_name, _schedule(ctx.target), "most_critical_pair")
        return [_removal(ctx, list(chosen))]

    def observe(self, ctx: ScenarioContext, faults: list[Fault]) -> dict[str, object]:
        return _observe_removal(ctx, faults)


class SolverLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(0.01, gt=0, le=5, description="the solver's forced time limit, in seconds (≤ 5)")
    faculty: str | None = Field(
        None, description="faculty id whose absence needs a repair; default: the busiest"
    )


CONFLICTS = ("missing_credential", "min_faculty_exceeds_available")


class Conflict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conflict: str = Field(
        "missing_credential",
        description="missing_credential: a service requires a credential nobody holds; "
        "min_faculty_exceeds_available: a service needs more faculty than exist",
    )
    service_id: str | None = Field(None, description="the service to make contradictory; default: the first")

    def model_post_init(self, __context: object) -> None:
        if self.conflict not in CONFLICTS:
            raise ValueError(f"conflict must be one of {', '.join(CONFLICTS)}")


def _repair_observation(ctx: ScenarioContext, removed: list[str], limit: float) -> dict[str, object]:
    from chaos_mcp.schedule.api import suggest_repair

    return {"suggested_repair": suggest_repair(ctx.target_name, _schedule(ctx.target), removed, limit)}


def _removed(ctx: ScenarioContext, faculty: str | None, how: str = "highest_utilized") -> list[str]:
    from chaos_mcp.schedule.api import pick_faculty

    return [faculty] if faculty else pick_faculty(ctx.target_name, _schedule(ctx.target), how)


def _observe_removal(ctx: ScenarioContext, faults: list[Fault]) -> dict[str, object]:
    removed = [f for fault in faults for f in getattr(fault, "faculty_ids", [])]
    return _repair_observation(ctx, removed, 10.0)


@register_scenario
class SolverTimeout(Scenario):
    name = "solver_timeout"
    title = "Solver Timeout"
    experiment_type = "schedule"
    target_kinds = frozenset({"schedule"})
    purpose = "Schedule generation: test timeout recovery (the repair must answer gracefully)"
    Parameters = SolverLimit
    automatic_revert = "the forced solver limit and the absence overlay are removed from the working copy"

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        params = ctx.parameters
        assert isinstance(params, SolverLimit)
        limit = fault_from_record(
            {
                "kind": "schedule.solver_time_limit",
                "fields": {
                    "target_name": ctx.target_name,
                    "target": _schedule(ctx.target).model_dump(mode="json"),
                    "seconds": params.seconds,
                    "overlay_id": f"{ctx.experiment_id}-solver-limit",
                },
            }
        )
        return [limit, _removal(ctx, _removed(ctx, params.faculty))]

    def observe(self, ctx: ScenarioContext, faults: list[Fault]) -> dict[str, object]:
        return _observe_removal(ctx, faults)


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
            fault_from_record(
                {
                    "kind": "schedule.constraint_conflict",
                    "fields": {
                        "target_name": ctx.target_name,
                        "target": _schedule(ctx.target).model_dump(mode="json"),
                        "conflict": params.conflict,
                        "service_id": params.service_id,
                        "overlay_id": f"{ctx.experiment_id}-conflict",
                    },
                }
            )
        ]

    def observe(self, ctx: ScenarioContext, faults: list[Fault]) -> dict[str, object]:
        from chaos_mcp.schedule.api import validate

        found = validate(ctx.target_name, _schedule(ctx.target))
        problems = found["problems"]
        count = len(problems) if isinstance(problems, list) else 0
        return {"validation": {"conflicts": found["conflicts"], "problems": count}}
