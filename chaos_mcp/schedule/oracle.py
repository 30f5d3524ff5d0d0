"""A brute-force reference for N-1/N-2, sharing nothing with the vectorized path.

It recomputes every slot's requirement and coverers from the raw assignments with plain
Python sets, then, for each removal set, counts the slots left worse off. Slow by design:
tests and the benchmark compare the fast analysis against it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from chaos_mcp.schedule.model import Program


@dataclass(frozen=True)
class Slot:
    req: int
    coverers: frozenset[str]
    eligible: frozenset[str]


def slots(program: Program) -> list[Slot]:
    absent: dict[str, set[int]] = {}
    for ab in program.absences:
        absent.setdefault(ab.person, set()).update(range(ab.start_block, ab.end_block + 1))
    for pid in program.removed_faculty:
        absent.setdefault(pid, set()).update(range(program.blocks))
    pgy = {r.id: r.pgy for r in program.residents}
    faculty = {f.id: f for f in program.faculty}
    services = {s.id: s for s in program.services}
    residents_at: dict[tuple[int, str], list[int]] = {}
    assigned: dict[tuple[int, str], set[str]] = {}
    for a in program.assignments:
        if a.service not in services or not 0 <= a.block < program.blocks:
            continue
        key = (a.block, a.service)
        if a.person in pgy and services[a.service].supervised and a.block not in absent.get(a.person, set()):
            residents_at.setdefault(key, []).append(pgy[a.person])
        elif a.person in faculty and a.role in ("primary", "supervising"):
            assigned.setdefault(key, set()).add(a.person)
    out = []
    for block in range(program.blocks):
        day = program.day_of(block)
        for svc in program.services:
            key = (block, svc.id)
            minimum = svc.min_faculty if program.service_active(svc, block) else 0
            load = sum(1.0 / program.rules.ratio_for(p) for p in residents_at.get(key, []))
            req = max(minimum, math.ceil(load - 1e-9))
            if req <= 0:
                continue
            eligible = frozenset(
                f.id
                for f in program.faculty
                if block not in absent.get(f.id, set())
                and all(f.holds(c, day) for c in svc.required_credentials)
            )
            out.append(Slot(req, frozenset(assigned.get(key, set()) & eligible), eligible))
    return out


def removal_effect(all_slots: list[Slot], removed: frozenset[str]) -> tuple[int, int, int]:
    """(uncovered slots added, slots made worse, sole-provider slots) once `removed` are gone."""
    added = worse = sole = 0
    for slot in all_slots:
        before = max(0, slot.req - len(slot.coverers))
        after = max(0, slot.req - len(slot.coverers - removed))
        added += after - before
        worse += after > before
        sole += bool(slot.coverers & removed) and slot.eligible <= removed
    return added, worse, sole


def n1(program: Program) -> dict[str, tuple[int, int, int]]:
    all_slots = slots(program)
    active = [f.id for f in program.faculty if f.id not in program.removed_faculty]
    return {f: removal_effect(all_slots, frozenset([f])) for f in active}


def n2(
    program: Program, pairs: list[tuple[str, str]] | None = None
) -> dict[tuple[str, str], tuple[int, int, int]]:
    all_slots = slots(program)
    active = [f.id for f in program.faculty if f.id not in program.removed_faculty]
    chosen = pairs if pairs is not None else list(itertools.combinations(active, 2))
    return {p: removal_effect(all_slots, frozenset(p)) for p in chosen}
