"""The data validator, run on the database itself: what bad data is in it right now?

Each check is one query through the mapping that returns the keys of the offending rows:

    dangling_refs       an assignment/absence/credential naming no person, or an assignment no service
    impossible_blocks   an assignment on a block the schedule does not have
    missing_roles       an assignment whose role is empty or not primary/supervising/backup
    overlaps            an assignment for a person and block that already has one (lower key)
    absence_conflicts   an assignment inside that person's absence
    credential_gaps     a faculty assignment on a service whose required credential the person
                        does not hold (or holds expired) on that day

`invalid_rows` counts distinct offending rows; `checksum` summarises every mapped table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from psycopg import sql

from chaos_mcp.data.db import Conn
from chaos_mcp.data.mapping import Mapping
from chaos_mcp.data.rows import table_checksum

CHECKS = (
    "dangling_refs",
    "impossible_blocks",
    "missing_roles",
    "overlaps",
    "absence_conflicts",
    "credential_gaps",
)
EXAMPLES = 5


@dataclass(frozen=True)
class Finding:
    check: str
    count: int
    examples: list[str]  # "table key"


@dataclass(frozen=True)
class Report:
    findings: dict[str, Finding]
    invalid_rows: int
    checksum: str

    def counts(self) -> dict[str, int]:
        return {name: f.count for name, f in self.findings.items()} | {"invalid_rows": self.invalid_rows}


def validate(conn: Conn, mapping: Mapping) -> Report:
    offenders: set[tuple[str, str]] = set()
    findings = {}
    for name in CHECKS:
        rows = [(str(t), str(k)) for t, k in conn.execute(_query(name, mapping))]
        offenders.update(rows)
        findings[name] = Finding(name, len(rows), [f"{t} {k}" for t, k in rows[:EXAMPLES]])
    return Report(findings, len(offenders), checksum(conn, mapping))


def checksum(conn: Conn, mapping: Mapping) -> str:
    whole = "|".join(f"{name}={table_checksum(conn, t)}" for name, t in sorted(mapping.items()))
    return hashlib.md5(whole.encode()).hexdigest()


def _query(name: str, m: Mapping) -> sql.Composed:
    a, p, s, b = m["assignments"], m["people"], m["services"], m["blocks"]
    ab, c = m["absences"], m["credentials"]
    ids = {
        "a": a.ident, "p": p.ident, "s": s.ident, "b": b.ident, "ab": ab.ident, "c": c.ident,
        "ak": a.key, "pk": p.key, "sk": s.key, "bk": b.key, "abk": ab.key, "ck": c.key,
        "aperson": a.col("person_id"), "ablock": a.col("block_id"), "aservice": a.col("service_id"),
        "arole": a.col("role"), "abperson": ab.col("person_id"), "abstart": ab.col("start_block"),
        "abend": ab.col("end_block"), "cperson": c.col("person_id"), "cname": c.col("name"),
        "cexpires": c.col("expires"), "pkind": p.col("kind"), "bday": b.col("day"),
        "required": s.col("required_credentials"),
    }  # fmt: skip
    text = {
        "dangling_refs": (
            "SELECT 'assignments', x.{ak}::text FROM {a} x "
            "WHERE NOT EXISTS (SELECT 1 FROM {p} y WHERE y.{pk} = x.{aperson}) "
            "OR NOT EXISTS (SELECT 1 FROM {s} y WHERE y.{sk} = x.{aservice}) "
            "UNION ALL SELECT 'absences', x.{abk}::text FROM {ab} x "
            "WHERE NOT EXISTS (SELECT 1 FROM {p} y WHERE y.{pk} = x.{abperson}) "
            "UNION ALL SELECT 'credentials', x.{ck}::text FROM {c} x "
            "WHERE NOT EXISTS (SELECT 1 FROM {p} y WHERE y.{pk} = x.{cperson})"
        ),
        "impossible_blocks": (
            "SELECT 'assignments', x.{ak}::text FROM {a} x WHERE NOT EXISTS "
            "(SELECT 1 FROM {b} y WHERE y.{bk} = x.{ablock})"
        ),
        "missing_roles": (
            "SELECT 'assignments', x.{ak}::text FROM {a} x "
            "WHERE x.{arole} IS NULL OR x.{arole}::text NOT IN ('primary', 'supervising', 'backup')"
        ),
        "overlaps": (
            "SELECT 'assignments', x.{ak}::text FROM {a} x WHERE EXISTS (SELECT 1 FROM {a} y "
            "WHERE y.{aperson} = x.{aperson} AND y.{ablock} = x.{ablock} AND y.{ak} < x.{ak})"
        ),
        "absence_conflicts": (
            "SELECT 'assignments', x.{ak}::text FROM {a} x WHERE EXISTS (SELECT 1 FROM {ab} y "
            "WHERE y.{abperson} = x.{aperson} AND x.{ablock} BETWEEN y.{abstart} AND y.{abend})"
        ),
        "credential_gaps": (
            "SELECT DISTINCT 'assignments', x.{ak}::text FROM {a} x JOIN {s} sv ON sv.{sk} = x.{aservice} "
            "JOIN {p} pe ON pe.{pk} = x.{aperson} AND pe.{pkind}::text = 'faculty' "
            "JOIN {b} bl ON bl.{bk} = x.{ablock} "
            "CROSS JOIN LATERAL unnest(sv.{required}::text[]) AS need(name) "
            "WHERE NOT EXISTS (SELECT 1 FROM {c} cr WHERE cr.{cperson} = x.{aperson} "
            "AND cr.{cname}::text = need.name AND (cr.{cexpires} IS NULL OR bl.{bday} < cr.{cexpires}))"
        ),
    }[name]
    return sql.SQL(text).format(**ids)
