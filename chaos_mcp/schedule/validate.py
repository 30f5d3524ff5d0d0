"""Semantic validation of a program: every problem named, nothing raised.

Codes: duplicate_id, dangling_reference, block_out_of_range, overlapping_assignment,
bad_hours, unknown_credential, bad_value, uncredentialed_assignment (warning),
assignment_during_absence (warning), and the ``conflict_*`` family (contradictory
requirements the program can never meet): conflict_unheld_credential, conflict_min_faculty.
"""

from __future__ import annotations

from collections import Counter

from chaos_mcp.schedule.errors import Problem
from chaos_mcp.schedule.model import Program, block_label

MAX_BLOCK_HOURS = 30.0


def validate_program(program: Program) -> list[Problem]:
    return [
        *_ids(program),
        *_credentials(program),
        *_assignments(program),
        *_absences(program),
        *_conflicts(program),
    ]


def fatal(problems: list[Problem]) -> list[Problem]:
    """Problems that make the input unusable (conflicts are analysable, warnings are notes)."""
    return [p for p in problems if p.severity == "error" and not p.code.startswith("conflict_")]


def _ids(program: Program) -> list[Problem]:
    ids = [f.id for f in program.faculty] + [r.id for r in program.residents]
    out = [
        Problem("duplicate_id", pid, f"person id {pid!r} is used {n} times; ids must be unique")
        for pid, n in Counter(ids).items()
        if n > 1
    ]
    out += [
        Problem("duplicate_id", sid, f"service id {sid!r} is used {n} times; ids must be unique")
        for sid, n in Counter(s.id for s in program.services).items()
        if n > 1
    ]
    for r in program.residents:
        if r.pgy not in (1, 2, 3):
            out.append(Problem("bad_value", r.id, f"resident {r.id} has pgy {r.pgy}; accepted: 1, 2 or 3"))
    for f in program.faculty:
        if not 0 <= f.half_days_per_week <= 14:
            out.append(
                Problem(
                    "bad_value",
                    f.id,
                    f"half_days_per_week {f.half_days_per_week} is outside 0..14 for {f.id}",
                )
            )
    for s in program.services:
        if s.min_faculty < 0:
            out.append(
                Problem("bad_value", s.id, f"service {s.id} has min_faculty {s.min_faculty}; must be ≥ 0")
            )
    return out


def _credentials(program: Program) -> list[Problem]:
    if not program.credentials:
        return []
    known = set(program.credentials)
    hint = f"known credentials: {', '.join(sorted(known))}"
    out = []
    for f in program.faculty:
        for c in f.credentials:
            if c.name not in known:
                out.append(
                    Problem(
                        "unknown_credential",
                        f.id,
                        f"faculty {f.id} holds unknown credential {c.name!r}; {hint}",
                    )
                )
    for s in program.services:
        for name in s.required_credentials:
            if name not in known:
                out.append(
                    Problem(
                        "unknown_credential",
                        s.id,
                        f"service {s.id} requires unknown credential {name!r}; {hint}",
                    )
                )
    return out


def _assignments(program: Program) -> list[Problem]:
    faculty = {f.id: f for f in program.faculty}
    people = set(faculty) | {r.id for r in program.residents}
    services = {s.id: s for s in program.services}
    seen: dict[tuple[str, int], str] = {}
    out = []
    for n, a in enumerate(program.assignments):
        where = f"assignments[{n}]"
        if a.person not in people:
            out.append(
                Problem(
                    "dangling_reference", where, f"person {a.person!r} is neither a faculty nor a resident id"
                )
            )
        if a.service not in services:
            out.append(Problem("dangling_reference", where, f"service {a.service!r} is not a service id"))
        if not 0 <= a.block < program.blocks:
            out.append(
                Problem(
                    "block_out_of_range",
                    where,
                    f"block {a.block} is outside 0..{program.blocks - 1} ({program.days} days)",
                )
            )
            continue
        if a.hours is not None and not 0 < a.hours <= MAX_BLOCK_HOURS:
            out.append(
                Problem(
                    "bad_hours",
                    where,
                    f"hours {a.hours:g} for {a.person} must be > 0 and ≤ {MAX_BLOCK_HOURS:g}",
                )
            )
        key = (a.person, a.block)
        if key in seen:
            out.append(
                Problem(
                    "overlapping_assignment",
                    where,
                    f"{a.person} is assigned twice at {block_label(program, a.block)}: "
                    f"{seen[key]} and {a.service}",
                )
            )
        seen[key] = a.service
        fac, svc = faculty.get(a.person), services.get(a.service)
        if fac and svc:
            day = program.day_of(a.block)
            missing = [c for c in svc.required_credentials if not fac.holds(c, day)]
            if missing:
                out.append(
                    Problem(
                        "uncredentialed_assignment",
                        where,
                        f"{fac.id} covers {svc.id} at {block_label(program, a.block)} "
                        f"without valid {', '.join(missing)}",
                        "warning",
                    )
                )
    return out


def _absences(program: Program) -> list[Problem]:
    people = {f.id for f in program.faculty} | {r.id for r in program.residents}
    out = []
    for n, ab in enumerate(program.absences):
        where = f"absences[{n}]"
        if ab.person not in people:
            out.append(
                Problem(
                    "dangling_reference",
                    where,
                    f"person {ab.person!r} is neither a faculty nor a resident id",
                )
            )
        if ab.end_block < ab.start_block or ab.start_block < 0 or ab.end_block >= program.blocks:
            out.append(
                Problem(
                    "block_out_of_range",
                    where,
                    f"absence blocks {ab.start_block}..{ab.end_block} must satisfy "
                    f"0 <= start <= end <= {program.blocks - 1}",
                )
            )
    return out


def _conflicts(program: Program) -> list[Problem]:
    out = []
    active = [f for f in program.faculty if f.id not in program.removed_faculty]
    for s in program.services:
        if not _runs(program, s.days_of_week, s.halves):
            continue
        for name in s.required_credentials:
            if not any(c.name == name for f in active for c in f.credentials):
                out.append(
                    Problem(
                        "conflict_unheld_credential",
                        s.id,
                        f"service {s.id} requires credential {name!r} that no available faculty holds; "
                        "its blocks stay uncovered until someone is credentialed or the rule dropped",
                    )
                )
        if s.min_faculty > len(active):
            out.append(
                Problem(
                    "conflict_min_faculty",
                    s.id,
                    f"service {s.id} requires {s.min_faculty} faculty per block "
                    f"but only {len(active)} are available",
                )
            )
    return out


def _runs(program: Program, days: tuple[int, ...], halves: tuple[str, ...]) -> bool:
    return bool(days) and bool(halves) and program.days > 0
