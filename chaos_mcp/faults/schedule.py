"""Schedule faults: overlays on the target's working copy (see chaos_mcp.schedule.overlay).

Each fault adds one overlay on inject and deletes it on revert; the overlay id is chosen at
construction, so the journal record alone is enough for any process to revert it.

    schedule.remove_faculty        the named faculty are absent for the whole horizon
    schedule.constraint_conflict   a requirement nobody can meet (unheld credential / min faculty)
    schedule.solver_time_limit     repairs get a very short solver limit
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, ClassVar

import anyio.to_thread
from pydantic import ValidationError

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.faults.base import Fault, FaultError, Reach, register_fault
from chaos_mcp.schedule import overlay
from chaos_mcp.schedule.errors import ScheduleError

CONFLICTS = ("missing_credential", "min_faculty_exceeds_available")


class _OverlayFault(Fault):
    """Shared lifecycle; subclasses are dataclasses with target_name, target and overlay_id fields."""

    reach: ClassVar[Reach] = "working_copy"
    target_name: str
    target: dict[str, Any]
    overlay_id: str

    def __post_init__(self) -> None:
        if not self.overlay_id:
            self.overlay_id = f"{self.kind}-{uuid.uuid4().hex[:12]}"

    def _overlay(self) -> dict[str, Any]:
        raise NotImplementedError

    def schedule_target(self) -> ScheduleTarget:
        try:
            target = ScheduleTarget.model_validate(self.target)
        except ValidationError as exc:
            raise FaultError(f"{self.kind}: the recorded schedule target is invalid: {exc}") from None
        if target.source == "postgres":
            raise FaultError(
                f"{self.kind}: PostgreSQL schedule sources are not supported yet (issue 7); "
                "use a synthetic or json:PATH target"
            )
        return target

    async def prepare(self) -> None:
        await anyio.to_thread.run_sync(self._check)

    def _check(self) -> None:
        self.schedule_target()

    async def inject(self) -> None:
        self.schedule_target()
        body = {"id": self.overlay_id, **self._overlay()}
        await anyio.to_thread.run_sync(self._guard, overlay.add_overlay, self.target_name, body)

    async def revert(self) -> None:
        await anyio.to_thread.run_sync(self._guard, overlay.remove_overlay, self.target_name, self.overlay_id)

    async def verify(self) -> bool:
        found = await anyio.to_thread.run_sync(self._guard, overlay.read_overlays, self.target_name)
        return any(o.get("id") == self.overlay_id for o in found)

    def _guard(self, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except (overlay.OverlayError, OSError) as exc:
            raise FaultError(f"{self.kind} on schedule target {self.target_name!r}: {exc}") from None


@register_fault
@dataclasses.dataclass
class RemoveFaculty(_OverlayFault):
    kind: ClassVar[str] = "schedule.remove_faculty"
    target_name: str
    target: dict[str, Any]
    faculty_ids: list[str]
    overlay_id: str = ""

    def _check(self) -> None:
        from chaos_mcp.schedule.api import load_program

        if not self.faculty_ids:
            raise FaultError("schedule.remove_faculty needs at least one faculty id")
        try:
            program = load_program(self.schedule_target())
        except ScheduleError as exc:
            raise FaultError(f"schedule.remove_faculty: {exc}") from None
        known = {f.id for f in program.faculty}
        unknown = [i for i in self.faculty_ids if i not in known]
        if unknown:
            raise FaultError(
                f"schedule.remove_faculty: unknown faculty id(s) {', '.join(unknown)} in target "
                f"{self.target_name!r}; it has {len(known)} faculty, e.g. {', '.join(sorted(known)[:3])}"
            )

    def _overlay(self) -> dict[str, Any]:
        return {"kind": "remove_faculty", "faculty_ids": list(self.faculty_ids)}

    def describe(self) -> str:
        who = ", ".join(self.faculty_ids)
        return f"remove faculty {who} from schedule target {self.target_name!r} (working copy)"


@register_fault
@dataclasses.dataclass
class ConstraintConflict(_OverlayFault):
    kind: ClassVar[str] = "schedule.constraint_conflict"
    target_name: str
    target: dict[str, Any]
    conflict: str = "missing_credential"
    service_id: str | None = None
    overlay_id: str = ""

    def _check(self) -> None:
        self.schedule_target()
        if self.conflict not in CONFLICTS:
            raise FaultError(
                f"schedule.constraint_conflict: conflict {self.conflict!r}; accepted: {', '.join(CONFLICTS)}"
            )

    def _overlay(self) -> dict[str, Any]:
        return {"kind": "constraint_conflict", "conflict": self.conflict, "service": self.service_id}

    def describe(self) -> str:
        where = f"service {self.service_id}" if self.service_id else "the busiest service"
        target = f"schedule target {self.target_name!r}"
        return f"inject a contradictory requirement ({self.conflict}) on {where} of {target}"


@register_fault
@dataclasses.dataclass
class SolverTimeLimit(_OverlayFault):
    kind: ClassVar[str] = "schedule.solver_time_limit"
    target_name: str
    target: dict[str, Any]
    seconds: float = 0.01
    overlay_id: str = ""

    def _check(self) -> None:
        self.schedule_target()
        if not 0 < self.seconds <= 60:
            raise FaultError(f"schedule.solver_time_limit: seconds must be in (0, 60], got {self.seconds}")

    def _overlay(self) -> dict[str, Any]:
        return {"kind": "solver_time_limit", "seconds": self.seconds}

    def describe(self) -> str:
        return f"force a {self.seconds:g} s solver limit on repairs of schedule target {self.target_name!r}"
