"""A seeded synthetic residency program that looks like a real one.

Defaults give ~12 faculty and 17 residents; it scales to 100 faculty, 200 residents and a
full year (730 blocks). The result is mostly compliant by construction: residents work at
most six days a week, 12 h a day, and are only placed where faculty can supervise them;
faculty demand is calibrated to 62-70 % of capacity and spread greedily, with noise, so
utilization sits around 0.6-0.75 and the busiest member's loss opens real gaps.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from chaos_mcp.schedule.coverage import active_grid
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

START = date(2025, 7, 1)
CREDENTIALS = ("BLS", "ACLS", "procedures", "obstetrics", "PALS")
SPECIALTIES = ("family_medicine", "internal_medicine", "pediatrics", "geriatrics", "sports_medicine")
SURNAMES: tuple[str, ...] = (
    "Adams",
    "Baker",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ito",
    "Jensen",
    "Kim",
)
SURNAMES += ("Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Quinn", "Rossi", "Silva", "Tanaka", "Usman")
SURNAMES += ("Varga", "Weber", "Xu", "Yilmaz", "Zhou")
WEEKDAYS = (0, 1, 2, 3, 4)
ALL_DAYS = (0, 1, 2, 3, 4, 5, 6)
# (name, days, halves, required credentials, resident-facing)
TEMPLATES: tuple[tuple[str, tuple[int, ...], tuple[str, ...], tuple[str, ...], bool], ...] = (
    ("inpatient", ALL_DAYS, ("AM", "PM"), ("ACLS",), True),
    ("clinic", WEEKDAYS, ("AM", "PM"), (), True),
    ("procedures", WEEKDAYS, ("AM",), ("procedures",), True),
    ("obstetrics", ALL_DAYS, ("AM", "PM"), ("obstetrics",), True),
)
TARGET_LOW, TARGET_HIGH = 0.62, 0.70


def generate(seed: int = 7, n_faculty: int = 12, n_residents: int = 17, days: int = 28) -> Program:
    rng = np.random.default_rng(seed)
    faculty = _faculty(rng, n_faculty)
    absences = _absences(rng, faculty, days)
    services = _services(faculty, days)
    program = Program(
        start=START,
        days=days,
        faculty=faculty,
        residents=_residents(n_residents),
        services=services,
        assignments=(),
        absences=absences,
        credentials=CREDENTIALS,
        rules=Rules(),
    )
    resident_assignments = _resident_rotations(program)
    faculty_assignments = _staff(rng, program)
    return program.replace(assignments=tuple(resident_assignments + faculty_assignments))


def _faculty(rng: np.random.Generator, n: int) -> tuple[Faculty, ...]:
    people = []
    for i in range(n):
        role = "program_director" if i == 0 else "associate_program_director" if i == 1 else "core_faculty"
        creds = ["BLS"] + (["ACLS"] if i % 7 != 6 else [])
        creds += ["procedures"] if i % 5 in (0, 2) else []
        creds += ["obstetrics"] if i % 3 == 1 else []
        creds += ["PALS"] if rng.random() < 0.3 else []
        expiry = [START + timedelta(days=int(rng.integers(400, 1100))) for _ in creds]
        people.append(
            Faculty(
                id=f"F{i + 1:03d}",
                name=f"Dr. {SURNAMES[i % len(SURNAMES)]}{'' if i < len(SURNAMES) else i // len(SURNAMES)}",
                role=role,
                specialties=(SPECIALTIES[int(rng.integers(len(SPECIALTIES)))],),
                credentials=tuple(Credential(c, e) for c, e in zip(creds, expiry, strict=True)),
                half_days_per_week=5 if i == 0 else 6 if i == 1 else int(rng.choice([6, 7, 8, 8])),
            )
        )
    return tuple(people)


def _absences(rng: np.random.Generator, faculty: tuple[Faculty, ...], days: int) -> tuple[Absence, ...]:
    """Short, non-overlapping leaves: at most one person away at a time."""
    out, day = [], int(rng.integers(2, 6))
    for fac in rng.permutation(len(faculty))[: max(1, len(faculty) // 6)]:
        length = int(rng.integers(2, 5))
        if day + length > days:
            break
        out.append(Absence(faculty[int(fac)].id, 2 * day, 2 * (day + length) - 1, "vacation"))
        day += length + int(rng.integers(1, 4))
    return tuple(out)


def _residents(n: int) -> tuple[Resident, ...]:
    return tuple(Resident(id=f"R{i + 1:03d}", name=f"Resident {i + 1}", pgy=1 + i % 3) for i in range(n))


def _services(faculty: tuple[Faculty, ...], days: int) -> tuple[Service, ...]:
    """Copies of the templates, then minimum-faculty bumps until demand is 62-70 % of capacity."""
    capacity_week = sum(f.half_days_per_week for f in faculty)
    per_week = {"inpatient": 14, "clinic": 10, "procedures": 5, "obstetrics": 14}
    copies = max(1, int(TARGET_LOW * capacity_week / sum(per_week.values())))
    mins: dict[str, int] = {}
    order: list[tuple[str, int]] = []
    for k in range(copies):
        for name, *_ in TEMPLATES:
            sid = name if k == 0 else f"{name}-{k + 1}"
            mins[sid] = 1
            order.append((sid, per_week[name]))
    demand = sum(w for _, w in order)
    bumps = [item for item in order if item[0].startswith("clinic")] + order
    for sid, weekly in bumps:
        if demand >= TARGET_LOW * capacity_week:
            break
        if demand + weekly <= TARGET_HIGH * capacity_week:
            mins[sid] += 1
            demand += weekly
    services = []
    for k in range(copies):
        for name, dows, halves, creds, _ in TEMPLATES:
            sid = name if k == 0 else f"{name}-{k + 1}"
            label = name.replace("_", " ").title() + ("" if k == 0 else f" {k + 1}")
            services.append(Service(sid, label, mins[sid], creds, dows, halves))  # type: ignore[arg-type]
    services.append(Service("elective", "Elective / research", 0, (), WEEKDAYS, ("AM", "PM"), False))
    return tuple(services)


def _resident_rotations(program: Program) -> list[Assignment]:
    """Four-week rotations; a resident joins a service only while its supervision load fits."""
    grid = active_grid(program)
    supervised = [s for s, svc in enumerate(program.services) if svc.supervised]
    elective = len(program.services) - 1
    load = np.zeros(grid.shape, dtype=np.float64)
    out: list[Assignment] = []
    periods = (program.days + 27) // 28
    for period in range(periods):
        first, last = period * 56, min(program.blocks, (period + 1) * 56)
        for r, res in enumerate(program.residents):
            weight = 1.0 / program.rules.ratio_for(res.pgy)
            day_off = r % 7
            chosen = elective
            for k in range(len(supervised)):
                s = supervised[(r + period + k) % len(supervised)]
                blocks = _duty_blocks(program, grid, s, first, last, day_off)
                cap = program.services[s].min_faculty
                if blocks.size and np.all(load[blocks, s] + weight <= cap + 1e-9):
                    chosen = s
                    break
            blocks = _duty_blocks(program, grid, chosen, first, last, day_off)
            load[blocks, chosen] += weight
            sid = program.services[chosen].id
            out += [Assignment(res.id, int(b), sid, "primary") for b in blocks]
    return out


def _duty_blocks(
    program: Program, grid: np.ndarray, s: int, first: int, last: int, day_off: int
) -> np.ndarray:
    blocks = np.arange(first, last)
    weekday = (program.start.weekday() + blocks // 2) % 7
    keep = (grid[first:last, s] > 0) & (weekday != day_off)
    out: np.ndarray = blocks[keep]
    return out


def _staff(rng: np.random.Generator, program: Program) -> list[Assignment]:
    """Greedy: scarce services first, least-utilized eligible faculty (with noise) per slot."""
    from chaos_mcp.schedule.coverage import build_coverage
    from chaos_mcp.schedule.utilization import faculty_capacity

    cov = build_coverage(program)
    cap = np.maximum(faculty_capacity(program), 1e-9)
    weekly_cap = np.array([f.half_days_per_week for f in program.faculty])
    n_fac = len(program.faculty)
    n_weeks = (program.days + 6) // 7
    week_load = np.zeros((n_fac, n_weeks), dtype=np.int64)
    busy = np.zeros((n_fac, program.blocks), dtype=np.bool_)
    duty_day = np.zeros((n_fac, program.days + 7), dtype=np.bool_)
    load = np.zeros(n_fac)
    scarcity = cov.eligible.sum(axis=0)
    order = np.lexsort((scarcity, cov.slot_block))
    noise = rng.random((len(order) + 1, n_fac)) * 0.12
    out: list[Assignment] = []
    for n, slot in enumerate(order):
        b = int(cov.slot_block[slot])
        day, week = b // 2, b // 14
        recent = duty_day[:, max(0, day - 6) : day].sum(axis=1) if day else np.zeros(n_fac, dtype=np.int64)
        ok = cov.eligible[:, slot] & ~busy[:, b] & (week_load[:, week] < weekly_cap) & (recent < 6)
        for _ in range(int(cov.req[slot])):
            if not ok.any():
                break
            score = np.where(ok, load / cap + noise[n], np.inf)
            f = int(np.argmin(score))
            ok[f] = False
            busy[f, b] = True
            duty_day[f, day] = True
            week_load[f, week] += 1
            load[f] += 1
            svc = program.services[int(cov.slot_service[slot])]
            out.append(Assignment(program.faculty[f].id, b, svc.id, "supervising" if n % 3 else "primary"))
    return out
