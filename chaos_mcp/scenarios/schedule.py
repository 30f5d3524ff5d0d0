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
