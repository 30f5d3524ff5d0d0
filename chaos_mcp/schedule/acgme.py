"""ACGME duty-hour and supervision rules, checked for every resident.

A block's duty starts at ``day_start_hour`` (AM) or ``day_start_hour + hours_per_half_day``
(PM) and lasts the assignment's ``hours`` (default ``hours_per_half_day``), so an 18-hour
PM call runs through the night into the next morning. Touching intervals merge into one
continuous duty period.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from chaos_mcp.schedule.coverage import Coverage
from chaos_mcp.schedule.model import Program, block_label

EPS = 1e-9


@dataclass(frozen=True)
class Violation:
    rule: str  # weekly_hours_80 | one_day_off_in_7 | continuous_duty_24_4 | min_rest | supervision_ratio
    person: str
    window: str
    severity: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "person": self.person,
            "window": self.window,
            "severity": self.severity,
            "detail": self.detail,
        }


def check(program: Program, cov: Coverage | None = None) -> list[Violation]:
    out: list[Violation] = []
    for person, intervals in _intervals(program).items():
        out += _weekly_hours(program, person, intervals)
        out += _days_off(program, person, intervals)
        out += _continuous_and_rest(program, person, intervals)
    if cov is not None:
        out += _supervision(program, cov)
    return out


def _intervals(program: Program) -> dict[str, list[tuple[float, float]]]:
    rules = program.rules
    residents = {r.id for r in program.residents}
    by_block: dict[str, dict[int, float]] = {r: {} for r in residents}
    for a in program.assignments:
        if a.person in residents and 0 <= a.block < program.blocks:
            hours = rules.hours_per_half_day if a.hours is None else a.hours
            blocks = by_block[a.person]
            blocks[a.block] = max(blocks.get(a.block, 0.0), hours)
    out: dict[str, list[tuple[float, float]]] = {}
    for person, blocks in by_block.items():
        spans = []
        for b, hours in sorted(blocks.items()):
            start = (b // 2) * 24.0 + rules.day_start_hour + (b % 2) * rules.hours_per_half_day
            spans.append((start, start + hours))
        out[person] = spans
    return out


def _day(program: Program, day: int) -> str:
    return program.day_of(2 * day).isoformat()


def _weekly_hours(program: Program, person: str, spans: list[tuple[float, float]]) -> list[Violation]:
    rules = program.rules
    per_day = np.zeros(program.days + 2)
    for start, end in spans:
        per_day[int(start // 24)] += end - start
    width = min(rules.averaging_days, program.days)
    sums = np.convolve(per_day[: program.days], np.ones(width), mode="valid")
    averages = sums / (width / 7.0)
    out: list[Violation] = []
    over = averages > rules.max_weekly_hours + EPS
    day = 0
    while day < len(over):
        if not over[day]:
            day += 1
            continue
        run_end = day
        while run_end + 1 < len(over) and over[run_end + 1]:
            run_end += 1
        worst = day + int(np.argmax(averages[day : run_end + 1]))
        out.append(
            Violation(
                "weekly_hours_80",
                person,
                f"{_day(program, worst)} .. {_day(program, worst + width - 1)}",
                "high",
                f"{averages[worst]:.1f} h/week averaged over {width} days (limit {rules.max_weekly_hours:g});"
                f" {run_end - day + 1} rolling window(s) over the limit",
            )
        )
        day = run_end + 1
    return out


def _days_off(program: Program, person: str, spans: list[tuple[float, float]]) -> list[Violation]:
    duty = np.zeros(program.days + 2, dtype=np.bool_)
    for start, end in spans:
        duty[int(start // 24) : int((end - EPS) // 24) + 1] = True
    limit = program.rules.max_consecutive_duty_days
    out, run = [], 0
    for day in range(len(duty) + 1):
        if day < len(duty) and duty[day]:
            run += 1
            continue
        if run > limit:
            first = day - run
            out.append(
                Violation(
                    "one_day_off_in_7",
                    person,
                    f"{_day(program, first)} .. {_day(program, day - 1)}",
                    "high",
                    f"{run} consecutive duty days (limit {limit}); day {limit + 1} of the run is "
                    f"{_day(program, first + limit)}",
                )
            )
        run = 0
    return out


def _continuous_and_rest(program: Program, person: str, spans: list[tuple[float, float]]) -> list[Violation]:
    rules = program.rules
    periods: list[list[float]] = []
    for start, end in spans:
        if periods and start <= periods[-1][1] + EPS:
            periods[-1][1] = max(periods[-1][1], end)
        else:
            periods.append([start, end])
    out = []
    for start, end in periods:
        if end - start > rules.max_continuous_duty_hours + EPS:
            out.append(
                Violation(
                    "continuous_duty_24_4",
                    person,
                    f"{_hour(program, start)} .. {_hour(program, end)}",
                    "critical",
                    f"{end - start:g} h of continuous duty "
                    f"(limit {rules.max_continuous_duty_hours:g} h = 24 + 4)",
                )
            )
    for (_, end), (start, _) in itertools.pairwise(periods):
        if start - end < rules.min_rest_hours - EPS:
            out.append(
                Violation(
                    "min_rest",
                    person,
                    f"{_hour(program, end)} .. {_hour(program, start)}",
                    "medium",
                    f"{start - end:g} h off between shifts (minimum {rules.min_rest_hours:g} h)",
                )
            )
    return out


def _hour(program: Program, hours: float) -> str:
    day = int(hours // 24)
    return f"{_day(program, day)} {int(hours % 24):02d}:{round((hours % 1) * 60) % 60:02d}"


def _supervision(program: Program, cov: Coverage) -> list[Violation]:
    out = []
    short = np.nonzero(cov.supervision_need > cov.count)[0]
    for slot in short:
        b = int(cov.slot_block[slot])
        svc = program.services[int(cov.slot_service[slot])]
        out.append(
            Violation(
                "supervision_ratio",
                f"service:{svc.id}",
                block_label(program, b),
                "critical",
                f"residents need {int(cov.supervision_need[slot])} supervising faculty, "
                f"{int(cov.count[slot])} present and credentialed",
            )
        )
    return out
