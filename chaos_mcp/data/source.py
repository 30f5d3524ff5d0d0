"""Load a residency `Program` from a PostgreSQL schedule database, through the target's mapping.

The loader is faithful, not fixing: dangling references, impossible blocks and overlaps come
through as they are so the validator can name them; a missing role loads as "" (covers nothing).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

import psycopg
from psycopg import sql

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.data.db import Conn, connect
from chaos_mcp.data.errors import DataError
from chaos_mcp.data.mapping import LOGICAL, Mapping, check_live, resolve
from chaos_mcp.data.plan import first_day
from chaos_mcp.schedule.errors import ScheduleError
from chaos_mcp.schedule.model import (
    Absence,
    Assignment,
    Credential,
    Faculty,
    Half,
    Program,
    Resident,
    Role,
    Service,
)


def load_postgres_program(target: ScheduleTarget) -> Program:
    """The program in the target's database; ScheduleError (no credentials in it) when it cannot be read."""
    if not target.dsn:
        raise ScheduleError("a postgres schedule source needs dsn = 'postgresql://…' in its target")
    try:
        mapping = resolve(target.mapping, "schedule source")
        with connect(target.dsn) as conn:
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            check_live(conn, mapping, "schedule source")
            return read_program(conn, mapping)
    except DataError as exc:
        raise ScheduleError(str(exc)) from None


def read_program(conn: Conn, mapping: Mapping) -> Program:
    rows = {name: _rows(conn, mapping, name) for name in LOGICAL}
    credentials: dict[str, list[Credential]] = defaultdict(list)
    for c in rows["credentials"]:
        credentials[str(c["person_id"])].append(Credential(str(c["name"]), c["expires"]))
    people = rows["people"]
    faculty = tuple(
        Faculty(
            id=str(p["id"]),
            name=str(p["name"]),
            role=str(p["role"] or "core_faculty"),
            specialties=tuple(p["specialties"] or ()),
            credentials=tuple(credentials.get(str(p["id"]), ())),
            half_days_per_week=int(p["half_days_per_week"] if p["half_days_per_week"] is not None else 8),
        )
        for p in people
        if p["kind"] == "faculty"
    )
    residents = tuple(
        Resident(str(p["id"]), str(p["name"]), int(p["pgy"] or 1)) for p in people if p["kind"] == "resident"
    )
    services = tuple(
        Service(
            id=str(s["id"]),
            name=str(s["name"]),
            min_faculty=int(s["min_faculty"]),
            required_credentials=tuple(s["required_credentials"] or ()),
            days_of_week=tuple(int(d) for d in s["days_of_week"] or ()),
            halves=cast(tuple[Half, ...], tuple(s["halves"] or ())),
            supervised=bool(s["supervised"]),
        )
        for s in rows["services"]
    )
    assignments = tuple(
        Assignment(
            str(a["person_id"]),
            int(a["block_id"]),
            str(a["service_id"]),
            cast(Role, str(a["role"] or "")),
            None if a["hours"] is None else float(a["hours"]),
        )
        for a in rows["assignments"]
    )
    absences = tuple(
        Absence(str(a["person_id"]), int(a["start_block"]), int(a["end_block"]), str(a["reason"]))
        for a in rows["absences"]
    )
    catalog = {c.name for f in faculty for c in f.credentials} | {
        n for s in services for n in s.required_credentials
    }
    blocks = [int(b["id"]) for b in rows["blocks"]]
    return Program(
        start=first_day(conn, mapping),
        days=(max(blocks) + 2) // 2 if blocks else 0,
        faculty=faculty,
        residents=residents,
        services=services,
        assignments=assignments,
        absences=absences,
        credentials=tuple(sorted(catalog)),
    )


def _rows(conn: Conn, mapping: Mapping, logical: str) -> list[dict[str, Any]]:
    t = mapping[logical]
    names = LOGICAL[logical]
    query = sql.SQL("SELECT {cols} FROM {t} ORDER BY {key}").format(
        cols=sql.SQL(", ").join(t.col(c) for c in names), t=t.ident, key=t.key
    )
    return [dict(zip(names, r, strict=True)) for r in conn.execute(query)]
