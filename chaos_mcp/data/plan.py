"""Which rows each data scenario changes, and into what: a list of `Change`s with full images.

Planning only reads (the caller runs it in one REPEATABLE READ snapshot). Rows are drawn from
the blast radius (rotations = service ids, blocks) with a seeded generator, each row at most
once, so the same seed on the same data gives the same plan.

    corrupt_assignment   dangling_person | impossible_block | missing_role | onto_absence  (updates)
    duplicate_shift      a second assignment for the same person and block                 (inserts)
    missing_credential   removed (delete) | expired (expiry set to the schedule's first day) (updates)
"""

from __future__ import annotations

import json
import random
import re
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg import sql

from chaos_mcp.data.db import Conn
from chaos_mcp.data.errors import DataError
from chaos_mcp.data.mapping import Mapping, TableMap, quoted
from chaos_mcp.data.rows import Change, meta, normalize

CORRUPT_KINDS = ("dangling_person", "impossible_block", "missing_role", "onto_absence")
CREDENTIAL_KINDS = ("removed", "expired")
ROLES = ("primary", "supervising", "backup")
INTEGER_TYPES = ("smallint", "integer", "bigint")
_BLOCK_RANGE = re.compile(r"^(\d+)\s*(?:-|\.\.)\s*(\d+)$")


@dataclass(frozen=True)
class Scope:
    rotations: tuple[str, ...] | None = None
    blocks: tuple[int, ...] | None = None

    def text(self) -> str:
        rot = ", ".join(self.rotations) if self.rotations else "all"
        blk = f"{len(self.blocks)} block(s)" if self.blocks is not None else "all"
        return f"rotations: {rot}; blocks: {blk}"


@dataclass(frozen=True)
class Row:
    key: str
    image: str
    person: str
    block: int
    service: str
    role: str | None


def resolve_blocks(conn: Conn, mapping: Mapping, given: list[str] | None) -> tuple[int, ...] | None:
    """Blast-radius blocks: `12`, `10-20` (inclusive), `2025-07-03` (both halves), `2025-07-03 PM`."""
    if given is None:
        return None
    b = mapping["blocks"]
    out: set[int] = set()
    for item in given:
        text = str(item).strip()
        if text.isdigit():
            out.add(int(text))
        elif m := _BLOCK_RANGE.match(text):
            out.update(range(int(m[1]), int(m[2]) + 1))
        else:
            day, _, half = text.partition(" ")
            try:
                when = date.fromisoformat(day)
            except ValueError:
                raise DataError(
                    f"blast_radius.blocks entry {text!r} is not a block; accepted: a block number (12), "
                    "a range (10-20), a date (2025-07-03) or a date and half (2025-07-03 PM)"
                ) from None
            query = sql.SQL(
                "SELECT {id} FROM {t} WHERE {day} = %s AND (%s::text IS NULL OR {half}::text = %s)"
            )
            rows = conn.execute(
                query.format(id=b.key, t=b.ident, day=b.col("day"), half=b.col("half")),
                (when, half or None, half or None),
            ).fetchall()
            out.update(int(r[0]) for r in rows)
    return tuple(sorted(out))


def assignments(conn: Conn, mapping: Mapping, scope: Scope) -> list[Row]:
    a = mapping["assignments"]
    query = sql.SQL(
        "SELECT t.{key}::text, to_jsonb(t)::text, t.{person}::text, t.{block}, t.{service}::text, "
        "t.{role}::text FROM {t} AS t WHERE (%(rot)s::text[] IS NULL OR t.{service}::text = ANY(%(rot)s)) "
        "AND (%(blk)s::bigint[] IS NULL OR t.{block} = ANY(%(blk)s)) ORDER BY t.{key}"
    ).format(
        key=a.key,
        t=a.ident,
        person=a.col("person_id"),
        block=a.col("block_id"),
        service=a.col("service_id"),
        role=a.col("role"),
    )
    params = {"rot": _list(scope.rotations), "blk": _list(scope.blocks)}
    return [
        Row(str(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), r[5]) for r in conn.execute(query, params)
    ]


def corrupt_assignment(
    conn: Conn, mapping: Mapping, scope: Scope, rows: int, kinds: list[str], rng: random.Random
) -> list[Change]:
    a = mapping["assignments"]
    pool = assignments(conn, mapping, scope)
    used: set[str] = set()
    out: list[Change] = []
    people = _column(conn, mapping["people"], "id")
    top = max([r.block for r in pool] + _ints(_column(conn, mapping["blocks"], "id")) + [0])
    for kind, quota in sorted(_quotas(kinds, rows), key=lambda kq: kq[0] != "onto_absence"):  # scarcest first
        if kind == "onto_absence":
            out += _onto_absence(conn, mapping, scope, pool, used, quota, rng)
            continue
        fits = [r for r in pool if r.key not in used and (kind != "missing_role" or r.role is not None)]
        chosen = _sample(fits, quota, rng, f"corrupt_assignment ({kind})", scope)
        for n, row in enumerate(chosen):
            used.add(row.key)
            if kind == "dangling_person":
                value: Any = _ghost(conn, mapping, people, len(out) + n)
                what = f"assignment {row.key}: person {row.person} → {value} (no such person)"
                column = "person_id"
            elif kind == "impossible_block":
                value = top + 1 + len(out) + n
                what = f"assignment {row.key}: block {row.block} → {value} (outside the schedule)"
                column = "block_id"
            else:
                value, column = None, "role"
                what = f"assignment {row.key}: role {row.role} → NULL"
            out.append(_update(conn, a, row.key, row.image, {column: value}, what))
    return out


def duplicate_shift(
    conn: Conn, mapping: Mapping, scope: Scope, rows: int, rng: random.Random, tag: str
) -> list[Change]:
    a = mapping["assignments"]
    chosen = _sample(assignments(conn, mapping, scope), rows, rng, "duplicate_shift", scope)
    services = list(scope.rotations or _column(conn, mapping["services"], "id"))
    keys = new_keys(conn, a, len(chosen), tag)
    out: list[Change] = []
    for row, key in zip(chosen, keys, strict=True):
        others = [s for s in services if s != row.service] or [row.service]
        service = rng.choice(others)
        image = json.loads(row.image) | {a.columns["id"]: key, a.columns["service_id"]: service}
        after = normalize(conn, a, image)
        what = f"assignment {key} inserted: {row.person} at block {row.block} on {service}"
        what += f", overlapping {row.key}"
        out.append(
            Change(table="assignments", op="insert", key=str(key), before=None, after=after, what=what)
        )
    return out


def missing_credential(
    conn: Conn, mapping: Mapping, scope: Scope, rows: int, kinds: list[str], rng: random.Random
) -> list[Change]:
    c, a, s = mapping["credentials"], mapping["assignments"], mapping["services"]
    start = first_day(conn, mapping)
    query = sql.SQL(
        "SELECT c.{key}::text, to_jsonb(c)::text, c.{person}::text, c.{name}::text FROM {ct} AS c "
        "WHERE (c.{expires} IS NULL OR c.{expires} > %(start)s) AND EXISTS (SELECT 1 FROM {at} AS a "
        "JOIN {st} AS s ON s.{sid} = a.{service} WHERE a.{aperson} = c.{person} "
        "AND c.{name}::text = ANY(s.{required}::text[]) "
        "AND (%(rot)s::text[] IS NULL OR a.{service}::text = ANY(%(rot)s)) "
        "AND (%(blk)s::bigint[] IS NULL OR a.{block} = ANY(%(blk)s))) ORDER BY c.{key}"
    ).format(
        key=c.key,
        person=c.col("person_id"),
        name=c.col("name"),
        expires=c.col("expires"),
        ct=c.ident,
        at=a.ident,
        st=s.ident,
        sid=s.key,
        service=a.col("service_id"),
        aperson=a.col("person_id"),
        required=s.col("required_credentials"),
        block=a.col("block_id"),
    )
    params = {"start": start, "rot": _list(scope.rotations), "blk": _list(scope.blocks)}
    pool = conn.execute(query, params).fetchall()
    out: list[Change] = []
    used: set[str] = set()
    for kind, quota in _quotas(kinds, rows):
        fits = [r for r in pool if str(r[0]) not in used]
        for key, image, person, name in _sample(fits, quota, rng, f"missing_credential ({kind})", scope):
            used.add(str(key))
            if kind == "removed":
                what = f"credential {key} ({person} {name}) deleted"
                out.append(
                    Change(
                        table="credentials",
                        op="delete",
                        key=str(key),
                        before=str(image),
                        after=None,
                        what=what,
                    )
                )
            else:
                what = f"credential {key} ({person} {name}) expired on {start.isoformat()}"
                out.append(_update(conn, c, str(key), str(image), {"expires": start.isoformat()}, what))
    return out


def first_day(conn: Conn, mapping: Mapping) -> date:
    b = mapping["blocks"]
    row = conn.execute(sql.SQL("SELECT min({day}) FROM {t}").format(day=b.col("day"), t=b.ident)).fetchone()
    if not row or row[0] is None:
        raise DataError(
            f"table {b.table!r} (logical blocks) is empty; the schedule has no days to plan against"
        )
    return row[0]  # type: ignore[no-any-return]


def new_keys(conn: Conn, t: TableMap, n: int, tag: str) -> list[Any]:
    """Keys for rows to be inserted, reserved before anything is written (a sequence when there is one)."""
    row = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", (quoted(t.table), t.columns["id"])).fetchone()
    if row and row[0]:
        rows = conn.execute("SELECT nextval(%s)::bigint FROM generate_series(1, %s)", (row[0], n)).fetchall()
        return [int(r[0]) for r in rows]
    if meta(conn, t).key_type in INTEGER_TYPES:
        top = conn.execute(
            sql.SQL("SELECT coalesce(max({k}), 0) FROM {t}").format(k=t.key, t=t.ident)
        ).fetchone()
        return [int(top[0] if top else 0) + 1000 + i for i in range(n)]
    return [f"chaos-{tag}-{i}" for i in range(n)]


def _onto_absence(
    conn: Conn,
    mapping: Mapping,
    scope: Scope,
    pool: list[Row],
    used: set[str],
    quota: int,
    rng: random.Random,
) -> list[Change]:
    ab = mapping["absences"]
    query = sql.SQL("SELECT {p}::text, {s}, {e} FROM {t}").format(
        p=ab.col("person_id"), s=ab.col("start_block"), e=ab.col("end_block"), t=ab.ident
    )
    away: dict[str, set[int]] = {}
    for person, start, end in conn.execute(query):
        away.setdefault(str(person), set()).update(range(int(start), int(end) + 1))
    busy = {(r.person, r.block) for r in assignments(conn, mapping, Scope())}
    allowed = set(scope.blocks) if scope.blocks is not None else None
    moves: list[tuple[Row, int]] = []
    for row in pool:
        free = sorted(
            b
            for b in away.get(row.person, ())
            if (row.person, b) not in busy and (allowed is None or b in allowed)
        )
        if row.key not in used and free:
            moves.append((row, rng.choice(free)))
    chosen = _sample(moves, quota, rng, "corrupt_assignment (onto_absence)", scope)
    out: list[Change] = []
    taken: set[tuple[str, int]] = set()
    for row, block in chosen:
        if (row.person, block) in taken:  # two moves onto the same free block would also overlap
            free = [b for b in sorted(away[row.person]) if (row.person, b) not in busy | taken]
            block = free[0] if free else block
        taken.add((row.person, block))
        used.add(row.key)
        what = (
            f"assignment {row.key}: {row.person} moved from block {row.block} to {block}, inside an absence"
        )
        out.append(_update(conn, mapping["assignments"], row.key, row.image, {"block_id": block}, what))
    return out


def _update(conn: Conn, t: TableMap, key: str, image: str, changes: dict[str, Any], what: str) -> Change:
    after = json.loads(image) | {t.columns[k]: v for k, v in changes.items()}
    return Change(
        table=t.logical, op="update", key=key, before=image, after=normalize(conn, t, after), what=what
    )


def _ghost(conn: Conn, mapping: Mapping, people: list[Any], n: int) -> Any:
    if meta(conn, mapping["people"]).key_type in INTEGER_TYPES:
        return max([*_ints(people), 0]) + 100_000 + n
    known = {str(p) for p in people}
    token = secrets.token_hex(3)
    return next(g for i in range(n, n + 1000) if (g := f"ghost-{token}-{i}") not in known)


def _column(conn: Conn, t: TableMap, column: str) -> list[Any]:
    query = sql.SQL("SELECT {c} FROM {t} ORDER BY 1").format(c=t.col(column), t=t.ident)
    return [r[0] for r in conn.execute(query)]


def _ints(values: list[Any]) -> list[int]:
    return [int(v) for v in values if isinstance(v, int)]


def _quotas(kinds: list[str], rows: int) -> list[tuple[str, int]]:
    kinds = list(dict.fromkeys(kinds))
    quotas = [(k, rows // len(kinds) + (1 if i < rows % len(kinds) else 0)) for i, k in enumerate(kinds)]
    return [(k, q) for k, q in quotas if q]


def _sample(pool: list[Any], n: int, rng: random.Random, what: str, scope: Scope) -> list[Any]:
    if len(pool) < n:
        raise DataError(
            f"{what}: needs {n} row(s) but only {len(pool)} qualify in the blast radius ({scope.text()}); "
            "lower parameters.rows or widen blast_radius.rotations/blocks. Nothing was touched."
        )
    return rng.sample(pool, n)


def _list(values: tuple[Any, ...] | None) -> list[Any] | None:
    return list(values) if values is not None else None
