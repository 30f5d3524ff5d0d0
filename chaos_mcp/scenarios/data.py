"""Data chaos on a PostgreSQL schedule database: does the system catch bad data?

Every scenario changes at most `blast_radius.max_rows` rows (required for data chaos), drawn
only from `blast_radius.rotations` (service ids) and `blast_radius.blocks` when given, and
restores them exactly, row by row, from images journaled before the change.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from chaos_mcp.config import ScheduleTarget, Target
from chaos_mcp.contract import MAX_ROWS_LIMIT, Problem, ValidationProblems
from chaos_mcp.data.db import connect
from chaos_mcp.data.errors import DataError
from chaos_mcp.data.mapping import as_config, live_problems, resolve
from chaos_mcp.faults.base import Fault
from chaos_mcp.faults.data import CorruptAssignment, DuplicateShift, MissingCredential, seed_of
from chaos_mcp.scenarios.base import Scenario, ScenarioContext, register_scenario

CorruptKind = Literal["dangling_person", "impossible_block", "missing_role", "onto_absence"]
CredentialKind = Literal["removed", "expired"]
_ROWS = Field(
    1, ge=1, le=MAX_ROWS_LIMIT, description=f"rows to change, 1..{MAX_ROWS_LIMIT}; ≤ blast_radius.max_rows"
)
_SEED = Field(None, description="picks the rows; default: derived from the experiment id")
REVERT = (
    "each changed row is restored, row by row, from its journaled image "
    "(UPDATE back / DELETE inserted / INSERT deleted); "
    "rows the application changed meanwhile are reported as conflicts, never overwritten"
)


class CorruptParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int = _ROWS
    kinds: list[CorruptKind] = Field(
        default_factory=lambda: list(get_args(CorruptKind)),
        min_length=1,
        description="corruptions to spread the rows over, round robin",
    )
    seed: int | None = _SEED


class DuplicateParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int = _ROWS
    seed: int | None = _SEED


class CredentialParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int = _ROWS
    kinds: list[CredentialKind] = Field(
        default_factory=lambda: list(get_args(CredentialKind)),
        min_length=1,
        description="removed (row deleted) or expired",
    )
    seed: int | None = _SEED


class _DataScenario(Scenario):
    experiment_type = "data"
    target_kinds = frozenset({"schedule"})
    mutates_data = True
    automatic_revert = REVERT
    fault: type[CorruptAssignment | DuplicateShift | MissingCredential]

    def check_target(self, target_name: str, target: Target) -> list[str]:
        if not isinstance(target, ScheduleTarget):
            return [f"{self.name} needs a schedule target; {target_name!r} is a {target.kind} target"]
        if target.source != "postgres":
            return [
                f"{self.name} changes rows of a PostgreSQL schedule database; {target_name!r} has "
                f"source = {target.source!r}. Set source = 'postgres' with dsn and "
                f"[targets.{target_name}.mapping]"
            ]
        if not target.dsn:
            return [f"{target_name!r}: source = 'postgres' needs dsn = 'postgresql://…'"]
        try:
            mapping = resolve(target.mapping, f"target {target_name!r}")
            with connect(target.dsn) as conn:
                conn.read_only = True
                return [f"target {target_name!r}: {p}" for p in live_problems(conn, mapping)]
        except DataError as exc:
            return [str(exc)]

    def build(self, ctx: ScenarioContext) -> list[Fault]:
        target = ctx.target
        assert isinstance(target, ScheduleTarget) and target.dsn
        params = ctx.parameters
        rows = int(getattr(params, "rows", 1))
        _check_rows(self.name, rows, ctx.blast_radius.get("max_rows"))
        seed = getattr(params, "seed", None)
        fault = self.fault(
            target_name=ctx.target_name,
            dsn=target.dsn,
            mapping=as_config(resolve(target.mapping, f"target {ctx.target_name!r}")),
            rows=rows,
            kinds=list(getattr(params, "kinds", [])),
            seed=seed if seed is not None else seed_of(ctx.experiment_id),
            rotations=ctx.blast_radius.get("rotations"),
            blocks=ctx.blast_radius.get("blocks"),
            tag=ctx.experiment_id,
        )
        return [fault]


def _check_rows(name: str, rows: int, max_rows: object) -> None:
    if max_rows is None:
        message = (
            f"{name} changes data: set blast_radius.max_rows (1 to {MAX_ROWS_LIMIT}) to the most rows it "
            f"may change; parameters.rows is {rows}"
        )
        raise ValidationProblems(
            "design_experiment", [Problem(field="blast_radius.max_rows", message=message)]
        )
    if not isinstance(max_rows, int) or not 1 <= max_rows <= MAX_ROWS_LIMIT:
        message = f"must be 1 to {MAX_ROWS_LIMIT}, got {max_rows!r}"
        raise ValidationProblems(
            "design_experiment", [Problem(field="blast_radius.max_rows", message=message)]
        )
    if rows > max_rows:
        message = (
            f"{rows} rows exceed blast_radius.max_rows = {max_rows}; lower parameters.rows or raise max_rows"
        )
        raise ValidationProblems("design_experiment", [Problem(field="parameters.rows", message=message)])


@register_scenario
class CorruptAssignmentScenario(_DataScenario):
    name = "corrupt_assignment"
    title = "Corrupt Assignment"
    purpose = (
        "Invalid assignments (dangling person, impossible block, missing role, shift on an absence): "
        "test data validation"
    )
    Parameters = CorruptParameters
    fault = CorruptAssignment


@register_scenario
class DuplicateShiftScenario(_DataScenario):
    name = "duplicate_shift"
    title = "Duplicate Shift"
    purpose = "Overlapping assignments for one person and time: test conflict detection"
    Parameters = DuplicateParameters
    fault = DuplicateShift


@register_scenario
class MissingCredentialScenario(_DataScenario):
    name = "missing_credential"
    title = "Missing Credential"
    purpose = "A credential that assignments depend on, removed or expired: test eligibility checks"
    Parameters = CredentialParameters
    fault = MissingCredential
