"""Helpers for the schedule tests: small random programs and the fast results in oracle shape."""

from __future__ import annotations

from datetime import date

import numpy as np

from chaos_mcp.schedule.analysis import Analysis
from chaos_mcp.schedule.model import Absence, Assignment, Credential, Faculty, Program, Resident, Service


def random_program(seed: int, n_faculty: int, n_residents: int, days: int) -> Program:
    """Messy on purpose: over- and under-covered slots, absences, expiring credentials."""
    rng = np.random.default_rng(seed)
    start = date(2025, 7, 1)
    creds = ("A", "B")
    faculty = tuple(
        Faculty(
            f"F{i}",
            f"F{i}",
            credentials=tuple(
                Credential(c, None if rng.random() < 0.7 else date(2025, 7, 1 + int(rng.integers(0, days))))
                for c in creds
                if rng.random() < 0.6
            ),
            half_days_per_week=int(rng.integers(4, 10)),
        )
        for i in range(n_faculty)
    )
    services = (
        Service("s0", "s0", int(rng.integers(1, 3))),
        Service("s1", "s1", 1, ("A",), (0, 1, 2, 3, 4), ("AM",)),
        Service("s2", "s2", int(rng.integers(0, 2)), ("B",)),
    )
    residents = tuple(Resident(f"R{i}", f"R{i}", 1 + i % 3) for i in range(n_residents))
    assignments = []
    for b in range(days * 2):
        for f in range(n_faculty):
            if rng.random() < 0.45:
                assignments.append(Assignment(f"F{f}", b, f"s{int(rng.integers(0, 3))}", "primary"))
        for r in range(n_residents):
            if rng.random() < 0.5:
                assignments.append(Assignment(f"R{r}", b, f"s{int(rng.integers(0, 3))}"))
    absences = tuple(
        Absence(f"F{int(rng.integers(0, n_faculty))}", int(s), int(s) + int(rng.integers(0, 6)))
        for s in rng.integers(0, days * 2 - 6, size=int(rng.integers(0, 3)))
    )
    return Program(start, days, faculty, residents, services, tuple(assignments), absences, creds)


def fast_n1(a: Analysis) -> dict[str, tuple[int, int, int]]:
    ids = a.program.faculty
    return {
        ids[int(i)].id: (int(a.first.new_uncovered[i]), int(a.first.new_uncovered[i]), int(a.first.sole[i]))
        for i in a.active
    }


def fast_n2(a: Analysis) -> dict[tuple[str, str], tuple[int, int, int]]:
    assert a.second is not None
    ids = a.program.faculty
    return {
        (ids[int(f)].id, ids[int(g)].id): (
            int(a.second.new_uncovered[k]),
            int(a.second.affected[k]),
            int(a.second.sole[k]),
        )
        for k, (f, g) in enumerate(a.second.pairs)
    }
