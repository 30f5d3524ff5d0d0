"""The residency program as plain, immutable data.

Time is counted in half-day blocks from the program's start date: block ``2*d`` is the
morning (AM) of day ``d`` and block ``2*d + 1`` its afternoon (PM). A year is 730 blocks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

Role = Literal["primary", "supervising", "backup"]
Half = Literal["AM", "PM"]
COVERING_ROLES: frozenset[str] = frozenset({"primary", "supervising"})
HALVES: tuple[Half, Half] = ("AM", "PM")


@dataclass(frozen=True)
class Credential:
    name: str
    expires: date | None = None  # valid on days strictly before this date; None = does not expire


@dataclass(frozen=True)
class Faculty:
    id: str
    name: str
    role: str = "core_faculty"
    specialties: tuple[str, ...] = ()
    credentials: tuple[Credential, ...] = ()
    half_days_per_week: int = 8  # clinical capacity

    def holds(self, credential: str, on: date) -> bool:
        return any(c.name == credential and (c.expires is None or on < c.expires) for c in self.credentials)


@dataclass(frozen=True)
class Resident:
    id: str
    name: str
    pgy: int  # 1..3


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    min_faculty: int = 1
    required_credentials: tuple[str, ...] = ()
    days_of_week: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)  # 0 = Monday
    halves: tuple[Half, ...] = HALVES
    supervised: bool = True  # residents here need faculty supervision


@dataclass(frozen=True)
class Assignment:
    person: str
    block: int
    service: str
    role: Role = "primary"
    hours: float | None = None  # None: the rules' hours per half-day


@dataclass(frozen=True)
class Absence:
    person: str
    start_block: int
    end_block: int  # inclusive
    reason: str = "leave"


@dataclass(frozen=True)
class Rules:
    hours_per_half_day: float = 6.0
    day_start_hour: float = 7.0
    max_weekly_hours: float = 80.0
    averaging_days: int = 28
    max_consecutive_duty_days: int = 6
    max_continuous_duty_hours: float = 28.0  # 24 + 4
    min_rest_hours: float = 8.0
    supervision_ratio: tuple[tuple[int, int], ...] = ((1, 2), (2, 4), (3, 4))  # (pgy, residents per faculty)
    cascade_limit: float = 0.95  # a faculty member pushed past this utilization fails next

    def ratio_for(self, pgy: int) -> int:
        return dict(self.supervision_ratio).get(pgy, 4)


@dataclass(frozen=True)
class Program:
    start: date
    days: int
    faculty: tuple[Faculty, ...]
    residents: tuple[Resident, ...]
    services: tuple[Service, ...]
    assignments: tuple[Assignment, ...]
    absences: tuple[Absence, ...] = ()
    credentials: tuple[str, ...] = ()  # the catalog every reference must come from
    rules: Rules = field(default_factory=Rules)
    repair_time_limit_s: float | None = None  # forced by the solver_time_limit fault
    removed_faculty: tuple[str, ...] = ()  # faculty taken out by an active removal overlay

    @property
    def blocks(self) -> int:
        return self.days * 2

    def day_of(self, block: int) -> date:
        return self.start + timedelta(days=block // 2)

    def weekday_of(self, block: int) -> int:
        return self.day_of(block).weekday()

    def service_active(self, service: Service, block: int) -> bool:
        return self.weekday_of(block) in service.days_of_week and HALVES[block % 2] in service.halves

    def replace(self, **changes: object) -> Program:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def block_label(program: Program, block: int) -> str:
    """`2025-07-03 PM (block 5)` — how blocks are named in every message."""
    return f"{program.day_of(block).isoformat()} {HALVES[block % 2]} (block {block})"
