"""Before a data fault changes anything: can every statement its restore needs run on each relation?

The catalog is asked, per touched relation, with the statements the inject and the restore will
run (an update needs UPDATE both ways; a delete is undone by an INSERT; an insert by a DELETE;
rows are always read and locked, which needs SELECT and UPDATE):

- privileges of the connecting role on the relation itself;
- the kind of relation: a table, or a view PostgreSQL can update by itself for those statements
  (`pg_relation_is_updatable`), every column written being updatable (`pg_column_is_updatable`);
- nothing that rewrites the statements: no INSTEAD OF trigger, no rule other than a view's SELECT.

What the catalog cannot tell (a BEFORE trigger that changes rows, a base table's own rights or
triggers behind a view) is caught by the trial restore that `rows.apply` runs, rolled back, in the
injecting transaction.
"""

from __future__ import annotations

from psycopg import sql

from chaos_mcp.data.db import Conn
from chaos_mcp.data.errors import NotApplied
from chaos_mcp.data.mapping import Mapping, quoted
from chaos_mcp.data.rows import Change, meta

# pg_relation_is_updatable's bitmask: 1 << CmdType
EVENT_BITS = {"UPDATE": 4, "INSERT": 8, "DELETE": 16}
NEEDS = {"update": ("UPDATE",), "insert": ("INSERT", "DELETE"), "delete": ("DELETE", "INSERT")}
RELKINDS = {"r": "table", "p": "partitioned table", "v": "view"}

_CATALOG = sql.SQL("""
SELECT c.relkind::text,
       has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),
       has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'),
       pg_relation_is_updatable(c.oid, false),
       (SELECT coalesce(array_agg(tgname::text ORDER BY tgname), '{}') FROM pg_trigger
         WHERE tgrelid = c.oid AND NOT tgisinternal AND tgenabled <> 'D' AND (tgtype & 64) <> 0),
       (SELECT coalesce(array_agg(rulename::text ORDER BY rulename), '{}') FROM pg_rewrite
         WHERE ev_class = c.oid AND ev_type <> '1')
FROM pg_class c WHERE c.oid = to_regclass(%s)
""")


def problems(conn: Conn, mapping: Mapping, changes: list[Change]) -> list[str]:
    """Why the restore of `changes` could not run, one line per relation and reason (empty: it can)."""
    needed: dict[str, set[str]] = {}
    for c in changes:
        needed.setdefault(c["table"], {"SELECT", "UPDATE"}).update(NEEDS[c["op"]])
    found = []
    for logical in sorted(needed):
        found += _relation_problems(conn, mapping, logical, needed[logical])
    return found


def _relation_problems(conn: Conn, mapping: Mapping, logical: str, needed: set[str]) -> list[str]:
    t = mapping[logical]
    row = conn.execute(_CATALOG, (quoted(t.table),)).fetchone()
    name = f"{t.table!r} (logical {logical})"
    if row is None:
        return [f"{name} does not exist"]
    relkind, select, insert, update, delete, events, instead, rules = row
    granted = {"SELECT": select, "INSERT": insert, "UPDATE": update, "DELETE": delete}
    found = []
    missing = sorted(p for p in needed if not granted[p])
    if missing:
        found.append(
            f"{name}: the configured role lacks {', '.join(missing)} on it (the restore runs "
            f"{', '.join(sorted(needed - {'SELECT'}))}); GRANT them, or use a DSN whose role has them"
        )
    if relkind not in RELKINDS:
        found.append(f"{name} is not a table or a view (relkind {relkind!r}); rows cannot be restored")
        return found
    if relkind == "v":
        cannot = sorted(p for p in needed - {"SELECT"} if not int(events) & EVENT_BITS[p])
        if cannot:
            found.append(
                f"{name} is a view PostgreSQL cannot {'/'.join(cannot)} by itself (not auto-updatable for "
                "those statements); map the table underneath instead"
            )
        fixed = _fixed_columns(conn, t.table, list(meta(conn, t).columns))
        if fixed:
            found.append(
                f"{name} is a view whose column(s) {', '.join(fixed)} cannot be written (computed or from "
                "another relation), so the restore could not write the rows back; map the table underneath"
            )
    if instead:
        found.append(f"{name} has INSTEAD OF trigger(s) {', '.join(instead)} that rewrite every write")
    if rules:
        found.append(f"{name} has rule(s) {', '.join(rules)} that rewrite writes; map one without rules")
    return found


def _fixed_columns(conn: Conn, table: str, columns: list[str]) -> list[str]:
    rows = conn.execute(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = ANY(%s) "
        "AND NOT pg_column_is_updatable(attrelid, attnum, false) ORDER BY attnum",
        (quoted(table), columns),
    ).fetchall()
    return [str(r[0]) for r in rows]


def check(conn: Conn, mapping: Mapping, changes: list[Change], where: str) -> None:
    found = problems(conn, mapping, changes)
    if found:
        raise NotApplied(
            f"{where}: refused before any row changed, because its restore could not run:\n"
            + "\n".join(f"- {p}" for p in found)
        )
