"""Errors of the schedule domain.

ScheduleError                 the schedule cannot be loaded or analysed; message says why
└── ScheduleValidationError   the input is malformed; ``problems`` names each one
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    code: str  # e.g. dangling_reference, overlapping_assignment, bad_hours, wrong_shape, conflict_...
    where: str  # a JSON path or a person/service/block
    message: str
    severity: str = "error"  # error | warning

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "where": self.where, "message": self.message, "severity": self.severity}


class ScheduleError(Exception):
    """The schedule cannot be loaded or analysed; the message says what to fix."""


class ScheduleValidationError(ScheduleError):
    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s):"] + [
            f"- {p.where}: {p.message}" for p in problems[:50]
        ]
        if len(problems) > 50:
            lines.append(f"- … and {len(problems) - 50} more")
        super().__init__("\n".join(lines))
