"""The logical schedule schema and how a real database's tables/columns map onto it.

chaos.toml names, per logical table, the physical table and any columns whose names differ;
everything not named keeps the reference name (chaos_mcp/data/schema.sql). An empty
mapping table therefore means "the reference schema":

    [targets.schedule.mapping]                  # the reference schema as is
    [targets.schedule.mapping.assignments]      # or: only what differs
    table = "rota.shifts"
    person_id = "staff_id"

Every logical table is keyed by its `id` column, which must be unique in the database:
restore addresses rows one by one through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from chaos_mcp.data.errors import DataError, MappingError

KEY = "id"
LOGICAL: dict[str, tuple[str, ...]] = {
    "people": ("id", "name", "kind", "role", "pgy", "half_days_per_week", "specialties"),
    "blocks": ("id", "day", "half"),
    "services": ("id", "name", "min_faculty", "days_of_week", "halves", "supervised", "required_credentials"),
    "assignments": ("id", "person_id", "block_id", "service_id", "role", "hours"),
    "absences": ("id", "person_id", "start_block", "end_block", "reason"),
    "credentials": ("id", "person_id", "name", "expires"),
}


@dataclass(frozen=True)
class TableMap:
    logical: str
    table: str  # physical, optionally schema-qualified
    columns: dict[str, str]  # logical → physical, every logical column

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(*self.table.split("."))

    def col(self, logical: str) -> sql.Identifier:
        return sql.Identifier(self.columns[logical])

    @property
    def key(self) -> sql.Identifier:
        return self.col(KEY)


Mapping = dict[str, TableMap]


def default_mapping() -> dict[str, dict[str, str]]:
    """The mapping of the reference schema, in chaos.toml's shape."""
    return {t: {"table": t} | {c: c for c in cols} for t, cols in LOGICAL.items()}


def resolve(raw: dict[str, dict[str, str]] | None, where: str = "mapping") -> Mapping:
    """The full mapping from chaos.toml's partial one; unknown names are errors, listed together."""
    if raw is None:
        raise DataError(
            f"{where}: the target has no table mapping. Add [targets.NAME.mapping] to chaos.toml "
            "(an empty table means the reference schema of docs/data-schema.md; otherwise name what differs, "
            'e.g. assignments = { table = "shifts", person_id = "staff_id" }).'
        )
    problems = _static_problems(raw)
    if problems:
        raise MappingError(where, problems)
    out: Mapping = {}
    for logical, cols in LOGICAL.items():
        given = dict(raw.get(logical) or {})
        table = given.pop("table", logical)
        out[logical] = TableMap(logical, table, {c: given.get(c, c) for c in cols})
    return out


def as_config(mapping: Mapping) -> dict[str, dict[str, str]]:
    """The full mapping in chaos.toml's shape (what a fault's journal record keeps)."""
    return {t.logical: {"table": t.table} | dict(t.columns) for t in mapping.values()}


def _static_problems(raw: dict[str, Any]) -> list[str]:
    problems = []
    for logical, cols in raw.items():
        if logical not in LOGICAL:
            problems.append(f"unknown logical table {logical!r}; accepted: {', '.join(LOGICAL)}")
            continue
        if not isinstance(cols, dict):
            problems.append(f"{logical}: expected a table of names (table = …, column = …), got {cols!r}")
            continue
        for name, value in cols.items():
            if name != "table" and name not in LOGICAL[logical]:
                accepted = ", ".join(("table", *LOGICAL[logical]))
                problems.append(f"{logical}: unknown logical column {name!r}; accepted: {accepted}")
            elif not isinstance(value, str) or not value.strip() or value.count(".") > (name == "table"):
                problems.append(f"{logical}.{name}: expected a plain name, got {value!r}")
    return problems


def live_problems(conn: psycopg.Connection[Any], mapping: Mapping) -> list[str]:
    """Every table or column the mapping names that the database lacks, and keys that are not unique."""
    found = conn.execute(_CATALOG, ([quoted(t.table) for t in mapping.values()],)).fetchall()
    catalog = {
        str(name): (set(cols or ()), set(unique or ()), bool(view)) for name, cols, unique, view in found
    }
    problems = []
    for t in mapping.values():
        if quoted(t.table) not in catalog:
            problems.append(f"table {t.table!r} (logical {t.logical}) does not exist")
            continue
        have, unique, view = catalog[quoted(t.table)]
        missing = [f"{phys!r} (logical {log})" for log, phys in t.columns.items() if phys not in have]
        if missing:
            problems.append(
                f"table {t.table!r} (logical {t.logical}) has no column {', '.join(missing)}; "
                f"it has: {', '.join(sorted(have))}"
            )
        elif t.columns[KEY] not in unique and not view:
            problems.append(
                f"table {t.table!r}: key column {t.columns[KEY]!r} (logical id) has no primary key or unique "
                "index; exact row-by-row restore needs one"
            )
    return problems


_CATALOG = """
SELECT n.name,
       (SELECT array_agg(attname::text) FROM pg_attribute
         WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped),
       (SELECT array_agg(a.attname::text) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
         AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1),
       c.relkind = 'v'
FROM unnest(%s::text[]) AS n(name) JOIN pg_class c ON c.oid = to_regclass(n.name)
"""


def check_live(conn: psycopg.Connection[Any], mapping: Mapping, where: str = "mapping") -> None:
    problems = live_problems(conn, mapping)
    if problems:
        raise MappingError(where, problems)


def quoted(table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
