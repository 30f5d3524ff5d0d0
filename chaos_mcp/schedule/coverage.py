"""Who covers what: the (block, service) requirement matrix, precomputed once.

A *slot* is a (block, service) pair with a requirement above zero. For each slot we keep the
requirement ``req`` (max of the service's minimum faculty and the residents' supervision
need), the faculty who cover it (assigned as primary/supervising, present, credentialed) as a
row of the boolean matrix ``covers[f, slot]``, and the faculty who *could* cover it
(credentialed and present) as ``eligible[f, slot]``. Every contingency question is then
arithmetic on these arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chaos_mcp.schedule.model import COVERING_ROLES, HALVES, Program

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Coverage:
    faculty_ids: tuple[str, ...]
    slot_block: IntArray
    slot_service: IntArray  # index into program.services
    req: IntArray
    covers: BoolArray  # (faculty, slot)
    eligible: BoolArray  # (faculty, slot)
    supervision_need: IntArray

    @property
    def count(self) -> IntArray:
        out: IntArray = self.covers.sum(axis=0, dtype=np.int64)
        return out

    @property
    def slack(self) -> IntArray:
        return self.count - self.req

    @property
    def uncovered(self) -> int:
        return int(np.maximum(0, -self.slack).sum())

    @property
    def required_total(self) -> int:
        return int(self.req.sum())


def absent_matrix(program: Program, ids: list[str]) -> BoolArray:
    """(person, block) True while the person is absent or removed."""
    index = {pid: i for i, pid in enumerate(ids)}
    absent = np.zeros((len(ids), program.blocks), dtype=np.bool_)
    for absence in program.absences:
        i = index.get(absence.person)
        if i is not None:
            absent[i, max(0, absence.start_block) : absence.end_block + 1] = True
    for pid in program.removed_faculty:
        if pid in index:
            absent[index[pid], :] = True
    return absent


def credential_matrix(program: Program) -> BoolArray:
    """(faculty, service, day) True when the faculty holds every credential the service needs."""
    days = program.days
    ok = np.ones((len(program.faculty), len(program.services), days), dtype=np.bool_)
    for f, fac in enumerate(program.faculty):
        for s, svc in enumerate(program.services):
            for name in svc.required_credentials:
                valid = np.zeros(days, dtype=np.bool_)
                for cred in fac.credentials:
                    if cred.name != name:
                        continue
                    last = days if cred.expires is None else (cred.expires - program.start).days
                    valid[: max(0, min(days, last))] = True
                ok[f, s] &= valid
    return ok


def build_coverage(program: Program) -> Coverage:
    fac_ids = [f.id for f in program.faculty]
    f_index = {pid: i for i, pid in enumerate(fac_ids)}
    s_index = {s.id: i for i, s in enumerate(program.services)}
    pgy = {r.id: r.pgy for r in program.residents}
    n_blocks, n_services = program.blocks, len(program.services)
    fac_absent = absent_matrix(program, fac_ids)
    res_ids = [r.id for r in program.residents]
    res_absent = absent_matrix(program, res_ids)
    r_index = {pid: i for i, pid in enumerate(res_ids)}

    load = np.zeros((n_blocks, n_services), dtype=np.float64)
    assigned: list[tuple[int, int, int]] = []
    for a in program.assignments:
        s = s_index.get(a.service)
        if s is None or not 0 <= a.block < n_blocks:
            continue
        if a.person in f_index:
            if a.role in COVERING_ROLES:
                assigned.append((f_index[a.person], a.block, s))
        elif (
            a.person in pgy and program.services[s].supervised and not res_absent[r_index[a.person], a.block]
        ):
            load[a.block, s] += 1.0 / program.rules.ratio_for(pgy[a.person])
    need = np.ceil(load - 1e-9).astype(np.int64)
    minimum = active_grid(program) * np.array([svc.min_faculty for svc in program.services], dtype=np.int64)
    req_grid = np.maximum(minimum, need)
    slot_b, slot_s = np.nonzero(req_grid > 0)
    slot_of = -np.ones((n_blocks, n_services), dtype=np.int64)
    slot_of[slot_b, slot_s] = np.arange(len(slot_b))

    cred = credential_matrix(program)
    eligible = cred[:, slot_s, slot_b // 2] & ~fac_absent[:, slot_b]
    covers = np.zeros((len(fac_ids), len(slot_b)), dtype=np.bool_)
    for f, b, s in assigned:
        slot = slot_of[b, s]
        if slot >= 0 and eligible[f, slot]:
            covers[f, slot] = True
    return Coverage(
        faculty_ids=tuple(fac_ids),
        slot_block=slot_b.astype(np.int64),
        slot_service=slot_s.astype(np.int64),
        req=req_grid[slot_b, slot_s].astype(np.int64),
        covers=covers,
        eligible=eligible,
        supervision_need=need[slot_b, slot_s].astype(np.int64),
    )


def active_grid(program: Program) -> IntArray:
    """(block, service) 1 where the service runs in that block."""
    blocks = np.arange(program.blocks)
    weekday = (program.start.weekday() + blocks // 2) % 7
    half = blocks % 2
    grid = np.zeros((program.blocks, len(program.services)), dtype=np.int64)
    for s, svc in enumerate(program.services):
        halves = [HALVES.index(h) for h in svc.halves]
        grid[:, s] = np.isin(weekday, list(svc.days_of_week)) & np.isin(half, halves)
    return grid


def supervision_need(pgys: list[int], program: Program) -> int:
    """Faculty needed to supervise these residents at once (PGY-1 1:2, PGY-2/3 1:4 by default)."""
    return math.ceil(sum(1.0 / program.rules.ratio_for(p) for p in pgys) - 1e-9)
