"""The documented JSON schedule format (docs/schedule-json.md): load, validate, dump.

Loading never crashes on bad input: a file of the wrong shape, dangling references,
overlapping assignments, bad hours or unknown credentials all end in one
``ScheduleValidationError`` whose ``problems`` name each one with its JSON path.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chaos_mcp.schedule.errors import Problem, ScheduleValidationError
from chaos_mcp.schedule.model import (
    Absence,
    Assignment,
    Credential,
    Faculty,
    Program,
    Resident,
    Rules,
    Service,
)
from chaos_mcp.schedule.validate import fatal, validate_program

FORMAT = "chaos-mcp.schedule/1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CredentialIn(_Strict):
    name: str
    expires: date | None = None


class FacultyIn(_Strict):
    id: str
    name: str = ""
    role: str = "core_faculty"
    specialties: list[str] = []
    credentials: list[CredentialIn | str] = []
    half_days_per_week: int = 8


class ResidentIn(_Strict):
    id: str
    name: str = ""
    pgy: int


class ServiceIn(_Strict):
    id: str
    name: str = ""
    min_faculty: int = 1
    required_credentials: list[str] = []
    days_of_week: list[int] = Field(default_factory=lambda: list(range(7)))
    halves: list[Literal["AM", "PM"]] = ["AM", "PM"]
    supervised: bool = True


class AssignmentIn(_Strict):
    person: str
    block: int
    service: str
    role: Literal["primary", "supervising", "backup"] = "primary"
    hours: float | None = None


class AbsenceIn(_Strict):
    person: str
    start_block: int
    end_block: int
    reason: str = "leave"


class RulesIn(_Strict):
    hours_per_half_day: float = Field(6.0, gt=0, le=24)
    max_weekly_hours: float = Field(80.0, gt=0, le=168)
    averaging_days: int = Field(28, ge=7, le=365)
    max_consecutive_duty_days: int = Field(6, ge=1, le=30)
    max_continuous_duty_hours: float = Field(28.0, gt=0, le=72)
    min_rest_hours: float = Field(8.0, ge=0, le=48)
    supervision_ratio: dict[Literal["1", "2", "3"], int] = {"1": 2, "2": 4, "3": 4}


class ScheduleIn(_Strict):
    format: Literal["chaos-mcp.schedule/1"] = "chaos-mcp.schedule/1"
    start_date: date
    days: int = Field(ge=1, le=366)
    credentials: list[str] = []
    rules: RulesIn = RulesIn()
    faculty: list[FacultyIn]
    residents: list[ResidentIn] = []
    services: list[ServiceIn]
    assignments: list[AssignmentIn] = []
    absences: list[AbsenceIn] = []


def load_json(path: Path) -> Program:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleValidationError(
            str(path), [Problem("unreadable", str(path), f"cannot read: {exc.strerror}")]
        ) from None
    return parse_json(text, str(path))


def parse_json(text: str, source: str = "<json>") -> Program:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ScheduleValidationError(
            source, [Problem("wrong_shape", "$", f"not valid JSON: {exc}")]
        ) from None
    return from_dict(raw, source)


def from_dict(raw: Any, source: str = "<json>") -> Program:
    try:
        data = ScheduleIn.model_validate(raw)
    except ValidationError as exc:
        raise ScheduleValidationError(source, _shape_problems(exc)) from None
    program = _build(data)
    problems = fatal(validate_program(program))
    if problems:
        raise ScheduleValidationError(source, problems)
    return program


def _shape_problems(exc: ValidationError) -> list[Problem]:
    out = []
    for error in exc.errors():
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling (see docs/schedule-json.md)"
        elif error["type"] == "missing":
            message = "required key is missing"
        out.append(Problem("wrong_shape", path, message))
    return out


def _build(data: ScheduleIn) -> Program:
    r = data.rules
    rules = Rules(
        hours_per_half_day=r.hours_per_half_day,
        max_weekly_hours=r.max_weekly_hours,
        averaging_days=r.averaging_days,
        max_consecutive_duty_days=r.max_consecutive_duty_days,
        max_continuous_duty_hours=r.max_continuous_duty_hours,
        min_rest_hours=r.min_rest_hours,
        supervision_ratio=tuple(sorted((int(k), v) for k, v in r.supervision_ratio.items())),
    )
    return Program(
        start=data.start_date,
        days=data.days,
        faculty=tuple(_faculty(f) for f in data.faculty),
        residents=tuple(Resident(x.id, x.name or x.id, x.pgy) for x in data.residents),
        services=tuple(
            Service(
                s.id,
                s.name or s.id,
                s.min_faculty,
                tuple(s.required_credentials),
                tuple(s.days_of_week),
                tuple(s.halves),
                s.supervised,
            )
            for s in data.services
        ),
        assignments=tuple(
            Assignment(a.person, a.block, a.service, a.role, a.hours) for a in data.assignments
        ),
        absences=tuple(Absence(a.person, a.start_block, a.end_block, a.reason) for a in data.absences),
        credentials=tuple(data.credentials),
        rules=rules,
    )


def _faculty(f: FacultyIn) -> Faculty:
    creds = tuple(
        Credential(c) if isinstance(c, str) else Credential(c.name, c.expires) for c in f.credentials
    )
    return Faculty(f.id, f.name or f.id, f.role, tuple(f.specialties), creds, f.half_days_per_week)


def to_dict(program: Program) -> dict[str, Any]:
    """The program in the documented format (round-trips through `from_dict`)."""
    r = program.rules
    return {
        "format": FORMAT,
        "start_date": program.start.isoformat(),
        "days": program.days,
        "credentials": list(program.credentials),
        "rules": {
            "hours_per_half_day": r.hours_per_half_day,
            "max_weekly_hours": r.max_weekly_hours,
            "averaging_days": r.averaging_days,
            "max_consecutive_duty_days": r.max_consecutive_duty_days,
            "max_continuous_duty_hours": r.max_continuous_duty_hours,
            "min_rest_hours": r.min_rest_hours,
            "supervision_ratio": {str(k): v for k, v in r.supervision_ratio},
        },
        "faculty": [
            {
                "id": f.id,
                "name": f.name,
                "role": f.role,
                "specialties": list(f.specialties),
                "credentials": [
                    {"name": c.name, "expires": c.expires.isoformat() if c.expires else None}
                    for c in f.credentials
                ],
                "half_days_per_week": f.half_days_per_week,
            }
            for f in program.faculty
        ],
        "residents": [{"id": x.id, "name": x.name, "pgy": x.pgy} for x in program.residents],
        "services": [
            {
                "id": s.id,
                "name": s.name,
                "min_faculty": s.min_faculty,
                "required_credentials": list(s.required_credentials),
                "days_of_week": list(s.days_of_week),
                "halves": list(s.halves),
                "supervised": s.supervised,
            }
            for s in program.services
        ],
        "assignments": [
            {"person": a.person, "block": a.block, "service": a.service, "role": a.role}
            | ({} if a.hours is None else {"hours": a.hours})
            for a in program.assignments
        ],
        "absences": [
            {"person": a.person, "start_block": a.start_block, "end_block": a.end_block, "reason": a.reason}
            for a in program.absences
        ],
    }
