"""Row images: snapshot, apply in one transaction, restore row by row, checksums.

A change is a JSON object, kept in the fault's journal record before anything is written:

    {"table": "assignments", "op": "update" | "insert" | "delete", "key": "42",
     "before": <the full row as jsonb text, or null for an insert>,
     "after":  <the full row as jsonb text, or null for a delete>,
     "what": "for people: what this change does"}

Images are `to_jsonb(row)` text, written back with `jsonb_populate_record`, so every column of
every type round-trips exactly, including columns the mapping does not name. Both directions
lock the touched rows, compare each one with the image it must have, and only then write:
forwards, a row that moved since the snapshot aborts everything; backwards, a row that is
neither what the fault wrote nor the original is a conflict, left alone and reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import psycopg
from psycopg import sql

from chaos_mcp.data.db import Conn
from chaos_mcp.data.errors import CommitUnknown, DataError, NotApplied
from chaos_mcp.data.mapping import Mapping, TableMap, quoted

LOCK_TIMEOUT = "5s"
_TYPE = re.compile(r"^[a-z][a-z0-9 _(),]*$")


class Change(TypedDict):
    table: str
    op: Literal["update", "insert", "delete"]
    key: str
    before: str | None
    after: str | None
    what: str


@dataclass(frozen=True)
class Meta:
    key_type: str
    columns: tuple[str, ...]  # writable (not generated) physical columns


@dataclass
class Restored:
    restored: int = 0
    already: int = 0
    conflicts: list[dict[str, str]] = field(default_factory=list)


def meta(conn: Conn, t: TableMap) -> Meta:
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attgenerated <> '' FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (quoted(t.table),),
    ).fetchall()
    types = {str(r[0]): str(r[1]) for r in rows}
    key_type = types.get(t.columns["id"], "")
    if not _TYPE.match(key_type):
        raise DataError(
            f"table {t.table!r}: key column {t.columns['id']!r} is missing or of an unusable type"
        )
    return Meta(key_type, tuple(str(r[0]) for r in rows if not r[2]))


def same(a: str | None, b: str | None) -> bool:
    """Two images (or absences) are the same row, compared as JSON values."""
    if a is None or b is None:
        return a is b
    return bool(json.loads(a) == json.loads(b))


def images(conn: Conn, t: TableMap, m: Meta, keys: Iterable[str], lock: bool = False) -> dict[str, str]:
    """Current images of the rows with these keys (absent rows are missing from the result)."""
    query = sql.SQL(
        "SELECT t.{key}::text, to_jsonb(t)::text FROM {table} AS t WHERE t.{key} = ANY({keys})"
    ).format(key=t.key, table=t.ident, keys=_keys(m))
    if lock:
        query += sql.SQL(" FOR UPDATE OF t")
    return {str(k): str(v) for k, v in conn.execute(query, (list(keys),))}


def normalize(conn: Conn, t: TableMap, image: dict[str, Any]) -> str:
    """The jsonb text the database will hold for this row: types coerced, canonical form."""
    row = conn.execute(
        sql.SQL("SELECT to_jsonb(jsonb_populate_record(NULL::{}, %s::jsonb))::text").format(t.ident),
        (json.dumps(image),),
    ).fetchone()
    assert row is not None
    return str(row[0])


def row_md5s(conn: Conn, t: TableMap, m: Meta, keys: Iterable[str]) -> dict[str, str]:
    query = sql.SQL(
        "SELECT t.{key}::text, md5(t::text) FROM {table} AS t WHERE t.{key} = ANY({keys})"
    ).format(key=t.key, table=t.ident, keys=_keys(m))
    return {str(k): str(v) for k, v in conn.execute(query, (list(keys),))}


def table_checksum(conn: Conn, t: TableMap) -> str:
    """`rows:md5` over the whole table's row text in key order."""
    query = sql.SQL(
        "SELECT count(*) || ':' || coalesce(md5(string_agg(md5(t::text), '' ORDER BY t.{key})), '') "
        "FROM {table} AS t"
    ).format(key=t.key, table=t.ident)
    row = conn.execute(query).fetchone()
    return str(row[0]) if row else ""


def apply(conn: Conn, mapping: Mapping, changes: list[Change]) -> None:
    """Inject: every change in ONE transaction, or none when any row moved since the snapshot, a
    trigger or rule rewrote a write, or the trial restore (run and rolled back in the same
    transaction) fails. Refusals raise NotApplied: nothing changed."""
    committing = False
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
            groups = _groups(conn, mapping, changes)
            for t, m, group in groups:
                current = images(conn, t, m, (c["key"] for c in group), lock=True)
                moved = [c for c in group if not same(current.get(c["key"]), c["before"])]
                if moved:
                    raise NotApplied(
                        f"{len(moved)} row(s) of {t.table!r} changed between the snapshot and the injection "
                        f"(first: key {moved[0]['key']}); nothing was changed. Inject again to take a new "
                        "snapshot."
                    )
                _write(conn, t, m, [(c["key"], c["before"], c["after"]) for c in group])
            for t, m, group in groups:
                _expect(conn, t, m, group, "after", "inject")
            _trial_restore(conn, groups)
            committing = True
    except DataError as exc:
        if isinstance(exc, NotApplied):
            raise
        raise NotApplied(str(exc)) from None
    except psycopg.Error as exc:
        reason = _first_line(exc)
        if committing and isinstance(exc, psycopg.OperationalError):
            raise CommitUnknown(
                f"the connection broke while committing the fault ({reason}); the rows may have changed. "
                "It is treated as injected: revert it (rollback or `chaos-mcp recover`)."
            ) from None
        raise NotApplied(f"PostgreSQL refused the fault's writes ({reason}); nothing was changed") from None


def _trial_restore(conn: Conn, groups: list[tuple[TableMap, Meta, list[Change]]]) -> None:
    """Run the restore's writes in a savepoint and roll them back: proof that the revert can work."""
    try:
        with conn.transaction():
            for t, m, group in groups:
                _write(conn, t, m, [(c["key"], c["after"], c["before"]) for c in group])
            for t, m, group in groups:
                _expect(conn, t, m, group, "before", "trial restore")
            raise psycopg.Rollback()
    except psycopg.Error as exc:
        raise NotApplied(
            f"refused before any row changed: the restore could not run ({_first_line(exc)}), so the fault "
            "could not be undone. Map a relation the configured role can write back (a table, or a view "
            "PostgreSQL updates by itself, without rewriting triggers or rules)."
        ) from None


def _expect(conn: Conn, t: TableMap, m: Meta, group: list[Change], image: str, step: str) -> None:
    """Every row holds exactly the image this step wrote; otherwise a trigger or rule rewrote it."""
    now = images(conn, t, m, (c["key"] for c in group))
    odd = [c for c in group if not same(now.get(c["key"]), c[image])]  # type: ignore[literal-required]
    if odd:
        raise NotApplied(
            f"table {t.table!r} rewrites rows on write ({step}: a trigger or rule changed key "
            f"{odd[0]['key']}); an exact restore could not tell its own writes from the application's, so "
            "nothing was changed. Map a table without such triggers."
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def restore(
    conn: Conn, mapping: Mapping, changes: list[Change], md5_before: dict[str, dict[str, str]]
) -> Restored:
    """Revert row by row in one transaction; rows someone else changed are conflicts, left alone."""
    result = Restored()
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        for t, m, group in _groups(conn, mapping, changes):
            current = images(conn, t, m, (c["key"] for c in group), lock=True)
            todo = []
            for c in group:
                now = current.get(c["key"])
                if same(now, c["before"]):
                    result.already += 1
                elif same(now, c["after"]):
                    todo.append((c["key"], c["after"], c["before"]))
                else:
                    result.conflicts.append(_conflict(t, c, now))
            _write(conn, t, m, todo)
            result.restored += len(todo)
            skip = {x["key"] for x in result.conflicts if x["table"] == t.logical}
            _check_md5(conn, t, m, group, md5_before.get(t.logical, {}), skip)
    return result


def _check_md5(
    conn: Conn, t: TableMap, m: Meta, group: list[Change], before: dict[str, str], skip: set[str]
) -> None:
    keys = [c["key"] for c in group if c["key"] not in skip]
    after = row_md5s(conn, t, m, keys)
    wrong = [k for k in keys if after.get(k) != before.get(k)]
    if wrong:
        raise DataError(
            f"table {t.table!r}: after restore {len(wrong)} row(s) differ from the snapshot's checksum "
            f"(first: key {wrong[0]}); the restore was rolled back and nothing changed. Restore by hand "
            "from the images in the journal record."
        )


def _conflict(t: TableMap, c: Change, now: str | None) -> dict[str, str]:
    if now is None:
        reason = "the row was deleted by someone else"
    elif c["after"] is None:
        reason = "a row with this key was inserted again by someone else"
    else:
        reason = "the row was changed by someone else"
    return {"table": t.logical, "key": c["key"], "what": c["what"], "reason": reason, "current": now or ""}


def _write(conn: Conn, t: TableMap, m: Meta, steps: list[tuple[str, str | None, str | None]]) -> None:
    """Each step takes one row (already locked and checked) from one image to another."""
    updates = [(img, key) for key, old, img in steps if old is not None and img is not None]
    inserts = [(img,) for key, old, img in steps if old is None and img is not None]
    deletes = [(key,) for key, old, img in steps if old is not None and img is None]
    rec = sql.SQL("jsonb_populate_record(NULL::{}, %s::jsonb)").format(t.ident)
    cols = [c for c in m.columns if c != t.columns["id"]]
    with conn.cursor() as cur:
        if updates:
            cur.executemany(
                sql.SQL(
                    "UPDATE {table} AS t SET ({cols}) = (SELECT {rcols} FROM {rec} AS r) WHERE t.{key} = {k}"
                ).format(
                    table=t.ident,
                    cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
                    rcols=sql.SQL(", ").join(sql.Identifier("r", c) for c in cols),
                    rec=rec,
                    key=t.key,
                    k=_key(m),
                ),
                updates,
            )
        if deletes:
            cur.executemany(
                sql.SQL("DELETE FROM {table} AS t WHERE t.{key} = {k}").format(
                    table=t.ident, key=t.key, k=_key(m)
                ),
                deletes,
            )
        if inserts:
            names = sql.SQL(", ").join(map(sql.Identifier, m.columns))
            cur.executemany(
                sql.SQL(
                    "INSERT INTO {table} ({names}) OVERRIDING SYSTEM VALUE SELECT {names} FROM {rec}"
                ).format(table=t.ident, names=names, rec=rec),
                inserts,
            )


def _groups(conn: Conn, mapping: Mapping, changes: list[Change]) -> list[tuple[TableMap, Meta, list[Change]]]:
    by_table: dict[str, list[Change]] = {}
    for c in changes:
        if c["table"] not in mapping:
            raise DataError(f"change names unknown logical table {c['table']!r}; the record is damaged")
        by_table.setdefault(c["table"], []).append(c)
    return [(mapping[name], meta(conn, mapping[name]), group) for name, group in by_table.items()]


def _keys(m: Meta) -> sql.Composed:
    return sql.SQL("%s::text[]::{}[]").format(sql.SQL(m.key_type))


def _key(m: Meta) -> sql.Composed:
    return sql.SQL("%s::text::{}").format(sql.SQL(m.key_type))
