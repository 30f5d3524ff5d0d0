"""The reference schedule schema: `migrate(dsn)` creates it (idempotent), `seed(dsn, program)` fills it.

Used by the tests and the demo; a real system keeps its own tables and maps them in chaos.toml
(see chaos_mcp.data.mapping). `seed` replaces whatever the reference tables held.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from importlib import resources

from chaos_mcp.data.db import connect
from chaos_mcp.schedule.model import HALVES, Program

TABLES = ("people", "blocks", "services", "assignments", "absences", "credentials")


def schema_sql() -> str:
    return resources.files("chaos_mcp.data").joinpath("schema.sql").read_text(encoding="utf-8")


def migrate(dsn: str) -> None:
    """Create the reference tables and indexes where missing; running it again changes nothing."""
    with connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('chaos_mcp.data.schema'))")
        conn.execute(schema_sql())  # a trusted file of static DDL


def seed(dsn: str, program: Program) -> dict[str, int]:
    """Replace the reference tables' rows with `program` (one transaction); rows written per table."""
    people: list[tuple[object, ...]] = [
        (f.id, f.name, "faculty", f.role, None, f.half_days_per_week, list(f.specialties))
        for f in program.faculty
    ] + [(r.id, r.name, "resident", None, r.pgy, None, []) for r in program.residents]
    blocks = [(b, program.start + timedelta(days=b // 2), HALVES[b % 2]) for b in range(program.blocks)]
    services = [
        (
            s.id,
            s.name,
            s.min_faculty,
            list(s.days_of_week),
            list(s.halves),
            s.supervised,
            list(s.required_credentials),
        )
        for s in program.services
    ]
    assignments = [(a.person, a.block, a.service, a.role, a.hours) for a in program.assignments]
    absences = [(a.person, a.start_block, a.end_block, a.reason) for a in program.absences]
    credentials = [(f.id, c.name, c.expires) for f in program.faculty for c in f.credentials]
    rows: dict[str, tuple[str, Sequence[tuple[object, ...]]]] = {
        "people": ("id, name, kind, role, pgy, half_days_per_week, specialties", people),
        "blocks": ("id, day, half", blocks),
        "services": (
            "id, name, min_faculty, days_of_week, halves, supervised, required_credentials",
            services,
        ),
        "assignments": ("person_id, block_id, service_id, role, hours", assignments),
        "absences": ("person_id, start_block, end_block, reason", absences),
        "credentials": ("person_id, name, expires", credentials),
    }
    with connect(dsn) as conn:
        conn.execute("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY")
        with conn.cursor() as cur:
            for table, (columns, values) in rows.items():
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
    return {table: len(values) for table, (_, values) in rows.items()}
